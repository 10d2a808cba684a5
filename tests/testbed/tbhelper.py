#!/usr/bin/env python3
"""Build-machine side helpers of the Soft-RoCE testbed (used by testbed.sh).

  tbhelper.py hub STATE_DIR N [OWNER_PID]
      The closed Ethernet segment: a learning switch on a unix stream
      socket, STATE_DIR/net/hub.sock, to which each QEMU host connects
      (-netdev stream). Nothing reaches any real network. Doubles as the testbed's watchdog: when no
      QEMU of the testbed is left, or OWNER_PID (if given) has died, it
      stops the QEMUs and exits.

  tbhelper.py exec STATE_DIR HOST TIMEOUT -- CMD ARGS...
      Runs CMD in HOST through the job spool of the host's stage-2 loop
      (tests/testbed/guest-init.sh), streams its stdout/stderr, and exits with
      its exit code; 124 on timeout, 255 when the host is gone.
"""
import os
import selectors
import shlex
import signal
import socket
import sys
import time


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def hub(state, n, owner):
    # Relative socket paths: the state directory can be deeper than the
    # 108 bytes a unix socket path may have. Each QEMU connects with
    # -netdev stream (frames prefixed by their 4-byte big-endian length);
    # stream sockets give flow control and room for bursts, where unix
    # datagram sockets queue only net.unix.max_dgram_qlen (10) frames.
    os.chdir(state)
    qpids = ["hosts/h%d/qemu.pid" % i for i in range(1, n + 1)]
    try:
        os.unlink("net/hub.sock")
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind("net/hub.sock")
    ls.listen(16)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    inbuf = {}   # conn -> bytearray of received, not yet complete data
    outbuf = {}  # conn -> bytearray of frames waiting to be sent
    macs = {}    # MAC -> conn
    with open("net/hub.ready", "w") as f:
        f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    MAX_PENDING = 8 << 20

    def drop(c):
        sel.unregister(c)
        c.close()
        inbuf.pop(c, None)
        outbuf.pop(c, None)
        for m in [m for m, o in macs.items() if o is c]:
            del macs[m]

    def want_write(c, on):
        sel.modify(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0))

    def send(c, data):
        ob = outbuf.get(c)
        if ob is None:
            return
        if ob:
            if len(ob) < MAX_PENDING:  # else: that host is stuck, drop the frame
                ob += data
            return
        try:
            k = c.send(data)
        except BlockingIOError:
            k = 0
        except OSError:
            drop(c)
            return
        if k < len(data):
            ob += data[k:]
            want_write(c, True)

    def forward(src, frame):
        if len(frame) < 14:
            return
        macs[frame[6:12]] = src
        dst = frame[0:6]
        data = len(frame).to_bytes(4, "big") + frame
        o = macs.get(dst) if not dst[0] & 1 else None
        if o is not None:
            if o is not src:
                send(o, data)
            return
        for o in list(outbuf):
            if o is not src:
                send(o, data)

    started = time.monotonic()
    last_check = started
    while True:
        for key, ev in sel.select(timeout=1.0):
            c = key.fileobj
            if c is ls:
                try:
                    nc, _ = ls.accept()
                except OSError:
                    continue
                nc.setblocking(False)
                inbuf[nc] = bytearray()
                outbuf[nc] = bytearray()
                sel.register(nc, selectors.EVENT_READ)
                continue
            if c not in inbuf:
                continue
            if ev & selectors.EVENT_WRITE:
                ob = outbuf[c]
                try:
                    k = c.send(ob)
                except BlockingIOError:
                    k = 0
                except OSError:
                    drop(c)
                    continue
                del ob[:k]
                if not ob:
                    want_write(c, False)
            if ev & selectors.EVENT_READ:
                try:
                    data = c.recv(1 << 18)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    drop(c)
                    continue
                ib = inbuf[c]
                ib += data
                while len(ib) >= 4:
                    ln = int.from_bytes(ib[:4], "big")
                    if len(ib) < 4 + ln:
                        break
                    frame = bytes(ib[4:4 + ln])
                    del ib[:4 + ln]
                    forward(c, frame)
                    if c not in inbuf:
                        break
        now = time.monotonic()
        if now - last_check >= 2.0:
            last_check = now
            alive = [p for p in map(read_pid, qpids) if p and pid_alive(p)]
            if owner and not pid_alive(owner):
                for p in alive:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                sys.exit(0)
            if not alive and now - started > 60:
                sys.exit(0)


def console_tail(hdir, lines=30):
    try:
        with open(os.path.join(hdir, "console.log"), "rb") as f:
            data = f.read()
    except OSError:
        return "(no console log)"
    tail = data.decode(errors="replace").splitlines()[-lines:]
    return "\n".join("  | " + l for l in tail)


def do_exec(state, host, timeout, argv):
    hdir = os.path.join(state, "hosts", host)
    if not os.path.exists(os.path.join(hdir, "ready")):
        sys.stderr.write("testbed: host %s is not up (state %s)\n" % (host, state))
        return 255
    qpid = read_pid(os.path.join(hdir, "qemu.pid"))
    if not qpid or not pid_alive(qpid):
        sys.stderr.write("testbed: host %s: QEMU is not running; console:\n%s\n"
                         % (host, console_tail(hdir)))
        return 255
    with open(os.path.join(hdir, "env")) as f:
        envsh = f.read()
    jid = "%d-%d-%d" % (os.getpid(), time.time_ns() % 10**9, os.getppid())
    jdir = os.path.join(hdir, "jobs", jid)
    os.makedirs(jdir)
    rcq = shlex.quote(os.path.join(jdir, "rc"))
    with open(os.path.join(jdir, "cmd.sh"), "w") as f:
        f.write(envsh)
        f.write("cd %s || { echo 127 > %s; exit 127; }\n"
                % (shlex.quote(os.environ.get("VMIG_SRC", "/")), rcq))
        f.write("%s\n" % " ".join(shlex.quote(a) for a in argv))
        # One write(2) of "N\n": the client takes rc as done at the newline.
        f.write("rc=$?\necho $rc > %s\nexit $rc\n" % rcq)
    open(os.path.join(jdir, "go.tmp"), "w").close()
    os.rename(os.path.join(jdir, "go.tmp"), os.path.join(jdir, "go"))

    killed = []

    def on_signal(signum, _frame):
        killed.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    streams = [(os.path.join(jdir, "out"), sys.stdout.buffer, [0]),
               (os.path.join(jdir, "err"), sys.stderr.buffer, [0])]

    def pump():
        got = False
        for path, out, pos in streams:
            try:
                with open(path, "rb") as f:
                    f.seek(pos[0])
                    data = f.read()
            except FileNotFoundError:
                continue
            if data:
                pos[0] += len(data)
                try:
                    out.write(data)
                    out.flush()
                except BrokenPipeError:
                    pass
                got = True
        return got

    def request_kill():
        if not os.path.exists(os.path.join(jdir, "killed")):
            try:
                open(os.path.join(jdir, "kill"), "w").close()
            except OSError:
                pass

    start = time.monotonic()
    deadline = start + timeout if timeout > 0 else None
    rc_path = os.path.join(jdir, "rc")
    delay = 0.002
    last_alive_check = start
    result = None
    def read_rc():
        try:
            with open(rc_path) as f:
                s = f.read()
        except FileNotFoundError:
            return None
        if not s.endswith("\n"):
            return None
        try:
            return int(s.strip())
        except ValueError:
            return 255

    while True:
        rc = read_rc()
        got = pump()
        if rc is not None:
            pump()
            result = rc
            break
        now = time.monotonic()
        if killed:
            request_kill()
            sys.stderr.write("testbed: exec on %s interrupted, job killed\n" % host)
            result = 128 + killed[0]
            break
        if deadline and now > deadline:
            request_kill()
            # give the host a moment to kill it and report
            end = time.monotonic() + 5
            while time.monotonic() < end and read_rc() is None:
                time.sleep(0.05)
            pump()
            sys.stderr.write("testbed: exec on %s timed out after %gs: %s\n"
                             % (host, timeout, " ".join(argv)))
            result = 124
            break
        if now - last_alive_check > 1.0:
            last_alive_check = now
            if not pid_alive(qpid):
                pump()
                sys.stderr.write("testbed: host %s died during exec; console:\n%s\n"
                                 % (host, console_tail(hdir)))
                return 255
        delay = 0.002 if got else min(delay * 1.5, 0.05)
        time.sleep(delay)
    if not os.environ.get("VMIG_TB_KEEP_JOBS"):
        for name in ("cmd.sh", "out", "err", "pid", "rc", "started", "killed"):
            try:
                os.unlink(os.path.join(jdir, name))
            except OSError:
                pass
        try:
            os.rmdir(jdir)
        except OSError:
            pass
    return result


def main():
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == "hub":
        owner = int(a[3]) if len(a) > 3 and a[3] else 0
        hub(a[1], int(a[2]), owner)
        return 0
    if len(a) >= 5 and a[0] == "exec" and a[4] == "--":
        return do_exec(a[1], a[2], float(a[3]), a[5:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
