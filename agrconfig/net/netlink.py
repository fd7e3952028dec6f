"""Netlink for rtnetlink: messages and attributes packed and parsed with struct, one request at a
time on a socket of its own (nothing shared survives a fork). Constants from the kernel's uapi
headers (linux/netlink.h). rtnl.py and tc.py say what the messages mean.

A message is handled as its bytes, header included: `messages()` frames a datagram into
(type, bytes), the parsers in rtnl.py and tc.py read the body at NLMSG.size.
"""
import os
import _socket as socket   # socket.py would cost every command ~3 ms (its IntEnum conversions)
import struct

NLMSG = struct.Struct("=IHHII")             # struct nlmsghdr: len, type, flags, seq, pid
RTATTR = struct.Struct("=HH")               # struct rtattr / nlattr: len, type
ERROR_CODE = struct.Struct("=i")            # struct nlmsgerr begins with the (negative) errno

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300                          # NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400     # for new objects
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200                       # on an error message
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF                      # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
NLMSGERR_ATTR_MSG = 1


class NetlinkError(OSError):
    """The kernel refused a request: errno as OSError's, and the kernel's own words (extended
    ack) in strerror when it gave some."""


# -- attributes ---------------------------------------------------------------------------------
def attr(kind, payload):
    """One attribute, padded to 4 bytes."""
    head = RTATTR.pack(RTATTR.size + len(payload), kind)
    return head + payload + bytes(-len(payload) % 4)


def nested(kind, *attrs):
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u8(kind, value):
    return attr(kind, struct.pack("=B", value))


def u32(kind, value):
    return attr(kind, struct.pack("=I", value))


def string(kind, text):
    """A NUL-terminated string (NLA_STRING / NLA_NUL_STRING both take it)."""
    return attr(kind, text.encode() + b"\0")


def attr_list(data, off=0, end=None):
    """(type, payload) of each attribute in data[off:end], in order: flags dropped, a malformed
    tail ignored (the kernel's own rule: stop at the first bad length)."""
    end = len(data) if end is None else end
    out = []
    while off + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, off)
        if length < RTATTR.size or off + length > end:
            break
        out.append((kind & NLA_TYPE_MASK, bytes(data[off + RTATTR.size:off + length])))
        off += (length + 3) & ~3
    return out


def attrs(data, off=0, end=None):
    """{type: payload} of the attributes in data[off:end] (attr_list's), the last of a type kept."""
    return dict(attr_list(data, off, end))


def get_u32(at, kind, default=None):
    value = at.get(kind, b"")
    return struct.unpack("=I", value)[0] if len(value) == 4 else default


def get_string(at, kind, default=""):
    value = at.get(kind)
    return value.split(b"\0", 1)[0].decode(errors="replace") if value is not None else default


# -- messages -------------------------------------------------------------------------------------
def message(mtype, flags, seq, body):
    return NLMSG.pack(NLMSG.size + len(body), mtype, flags, seq, 0) + body


def messages(data):
    """(type, bytes of the message) for each netlink message in one datagram. A header too
    short to be one ends the datagram as NLMSG_DONE would."""
    off = 0
    while off + NLMSG.size <= len(data):
        length, mtype, _f, _seq, _pid = NLMSG.unpack_from(data, off)
        if length < NLMSG.size:
            yield NLMSG_DONE, b""
            return
        yield mtype, bytes(data[off:off + length])
        off += (length + 3) & ~3


def error_of(msg):
    """(errno, the kernel's message or "") of an NLMSG_ERROR message; errno 0 is an ack."""
    code = -ERROR_CODE.unpack_from(msg, NLMSG.size)[0]
    _len, _type, flags, _seq, _pid = NLMSG.unpack_from(msg)
    text = ""
    if code and flags & NLM_F_ACK_TLVS:
        # After the error: the request's header only (capped) or the whole request, then TLVs.
        off = NLMSG.size + ERROR_CODE.size
        off += NLMSG.size if flags & NLM_F_CAPPED else NLMSG.unpack_from(msg, off)[0]
        text = get_string(attrs(msg, off), NLMSGERR_ATTR_MSG)
    return code, text


def _done_error(msg):
    """(errno, words) of a dump's NLMSG_DONE: a dump that failed part-way ends with its errno."""
    if len(msg) < NLMSG.size + ERROR_CODE.size:
        return 0, ""
    code = -ERROR_CODE.unpack_from(msg, NLMSG.size)[0]
    flags = NLMSG.unpack_from(msg)[2]
    text = get_string(attrs(msg, NLMSG.size + ERROR_CODE.size), NLMSGERR_ATTR_MSG) if flags & NLM_F_ACK_TLVS else ""
    return code, text


def raise_error(code, text):
    raise NetlinkError(code, f"{os.strerror(code)}: {text}" if text else os.strerror(code))


# -- requests -------------------------------------------------------------------------------------
def open_socket():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):   # errors without the request, with words
            try:
                sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass                                        # an old kernel: errno only
    except BaseException:
        sock.close()
        raise
    return sock


def request(mtype, body, flags=0, dump=False, sock=None):
    """Send one request; its replies as [(type, bytes of the message)]. A dump reads until
    NLMSG_DONE; anything else is sent with NLM_F_ACK and reads until the kernel's ack. A refusal
    raises NetlinkError. `sock`: a socket to use (tests), else one of its own."""
    own = sock is None
    if own:
        sock = open_socket()
    try:
        seq = 1
        flags |= NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        sock.send(message(mtype, flags, seq, body))
        return _replies(sock, seq)
    finally:
        if own:
            sock.close()


def _replies(sock, seq):
    out = []
    buf = bytearray(32768)
    while True:
        size = sock.recv_into(buf, 0, socket.MSG_PEEK | socket.MSG_TRUNC)
        if size > len(buf):                 # a datagram bigger than the buffer: make room first
            buf = bytearray(size)
        size = sock.recv_into(buf)
        for mtype, msg in messages(memoryview(buf)[:size]):
            if mtype == NLMSG_DONE and not msg:
                return out                  # a broken header: nothing more can be read
            if NLMSG.unpack_from(msg)[3] != seq:
                continue                    # not a reply to this request
            if mtype == NLMSG_ERROR:
                code, text = error_of(msg)
                if code:
                    raise_error(code, text)
                return out                  # the ack: all replies came before it
            if mtype == NLMSG_DONE:
                code, text = _done_error(msg)
                if code:
                    raise_error(code, text)
                return out
            if mtype in (NLMSG_NOOP, NLMSG_OVERRUN):
                continue
            out.append((mtype, msg))
