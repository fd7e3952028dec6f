"""The command line: docopt usage, the ifconfig grammar, rendering, provisioning files."""
