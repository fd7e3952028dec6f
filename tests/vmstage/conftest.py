import os

# The guest tests run inside the VM (tests/vm.py sets AGRCONFIG_VM_GUEST there); on the host,
# test_debian_kernel.py boots the VM and reports each of them as its own test.
collect_ignore = [] if os.environ.get("AGRCONFIG_VM_GUEST") else ["guest"]
