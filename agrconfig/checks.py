"""Checks of values from users and from the wire, shared by the grammar and the control
protocol (so both refuse the same things). Bottom layer: imports nothing of the project."""


def is_number(text, digits=10):
    """A decimal number as a shell user writes one: ASCII digits, not too many of them."""
    return isinstance(text, str) and 0 < len(text) <= digits and text.isascii() and text.isdigit()


def valid_ifname(name):
    """A name Linux would accept for an interface (net/core/dev.c dev_valid_name): 1 to 15
    octets, not '.' or '..', no '/', ':', NUL or white space. Checked here so a name the
    kernel would refuse or truncate (a NUL inside) is a usage error, not a surprise later."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        return False
    try:
        if len(name.encode()) > 15:
            return False
    except UnicodeEncodeError:      # a lone surrogate from undecodable argv bytes
        return False
    return name.isprintable() and not any(ch in "/:" or ch.isspace() for ch in name)
