"""The project's log: the part of logging's interface we use, without logging's imports.

The logging package pulls in traceback, string, threading, weakref and more: about 0.5 MiB in
every worker and supervisor and 5 ms of every command's start. Records go to the sinks set
here: syslog (the C module), a file, or (the default, as logging's last resort does) warnings
and errors to stderr. Tests add a sink that hands records to logging for caplog.
"""
import os
import sys
import time

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}


def _stderr(level, text, exc_info):
    sys.stderr.write(text + _traceback(exc_info) + "\n")


def _traceback(exc_info):
    if not exc_info:
        return ""
    import traceback
    return "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()


class Log:
    def __init__(self):
        self.level = WARNING
        self.sinks = [_stderr]

    def setLevel(self, level):
        self.level = level

    def isEnabledFor(self, level):
        return level >= self.level

    def log(self, level, msg, *args, exc_info=None):
        if level < self.level:
            return
        try:
            text = msg % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args!r}"
        if exc_info is True:
            exc_info = sys.exc_info()
        if exc_info and exc_info[0] is None:
            exc_info = None
        for sink in self.sinks:
            try:
                sink(level, text, exc_info)
            except Exception:   # noqa: BLE001 (a full disk or a gone syslog must not stop the worker)
                pass

    def debug(self, msg, *args, **kw):
        self.log(DEBUG, msg, *args, **kw)

    def info(self, msg, *args, **kw):
        self.log(INFO, msg, *args, **kw)

    def warning(self, msg, *args, **kw):
        self.log(WARNING, msg, *args, **kw)

    def error(self, msg, *args, **kw):
        self.log(ERROR, msg, *args, **kw)

    def critical(self, msg, *args, **kw):
        self.log(CRITICAL, msg, *args, **kw)

    def exception(self, msg, *args, exc_info=True):
        self.log(ERROR, msg, *args, exc_info=exc_info)


log = Log()


def to_syslog(ident, stderr=False):
    """Log INFO and up to syslog's daemon facility as `ident[pid]` (and stderr if asked)."""
    import syslog
    syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
    prio = {DEBUG: syslog.LOG_DEBUG, INFO: syslog.LOG_INFO, WARNING: syslog.LOG_WARNING,
            ERROR: syslog.LOG_ERR, CRITICAL: syslog.LOG_CRIT}

    def sink(level, text, exc_info):
        for line in (text + _traceback(exc_info)).splitlines() or [""]:
            syslog.syslog(prio.get(level, syslog.LOG_INFO), line)

    log.sinks = [sink] + ([_stderr] if stderr else [])
    log.level = INFO


def to_file(path):
    """Log INFO and up to `path`, one appended line per record as logging's FileHandler did
    ("2026-12-06 16:40:00,123 INFO text")."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)   # group root: paths.py

    def sink(level, text, exc_info):
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now * 1000) % 1000:03d}"
        os.write(fd, f"{stamp} {NAMES.get(level, level)} {text}{_traceback(exc_info)}\n".encode("utf-8", "replace"))

    log.sinks = [sink]
    log.level = INFO
