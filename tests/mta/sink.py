#!/usr/bin/env python3
"""A tiny SMTP sink for the relayscan MTA ground-truth lab (stdlib only).

Every real MTA started by tests/mta/up.sh relays its outbound mail to this
sink, never to the internet. The sink accepts every sender and recipient and
stores each message as one file in --dir:

    mail-from: <a@example.net>
    rcpt-to: <victim@example.com>
    rcpt-to: <other@example.com>        (one line per recipient)
    helo: postfix-open.test
    peer: 127.0.0.1:41234
    received-at: 2024-01-01T00:00:00.000000+00:00

    <the message data, dot-unstuffed, exactly as received>

The header section ends at the first empty line. Files are named
<nanoseconds>-<seq>.eml (so a plain sort gives arrival order) and are written
atomically (temporary name, then rename), so a test that polls the directory
never reads half a message.

It listens on loopback only and runs until SIGTERM/SIGINT. Several
listeners may each store into their own directory:

    sink.py --listen 127.0.26.1:2526=STATE/sink --listen 127.0.26.2:2526=STATE/mailbox
"""

import argparse
import asyncio
import datetime
import ipaddress
import itertools
import os
import signal
import sys
import time

MAX_LINE = 64 * 1024
MAX_MESSAGE = 32 * 1024 * 1024
HOSTNAME = "sink.relayscan.test"

_seq = itertools.count(1)


def log(msg):
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"{stamp} sink: {msg}", file=sys.stderr, flush=True)


def envelope_arg(line, keyword):
    """Return the path after 'MAIL FROM:'/'RCPT TO:' (with its brackets), or None."""
    if not line.upper().startswith(keyword):
        return None
    rest = line[len(keyword):].strip()
    if rest.startswith("<"):
        end = rest.find(">")
        if end == -1:
            return None
        return rest[: end + 1]
    # No angle brackets: take the first word, store it bracketed.
    word = rest.split(" ", 1)[0]
    return f"<{word}>" if word else None


class Session:
    def __init__(self, reader, writer, outdir):
        self.reader = reader
        self.writer = writer
        self.outdir = outdir
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.helo = ""
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpts = []

    async def reply(self, text):
        self.writer.write(text.encode("utf-8", "replace") + b"\r\n")
        await self.writer.drain()

    async def readline(self):
        line = await self.reader.readuntil(b"\n")
        if len(line) > MAX_LINE:
            raise ValueError("line too long")
        return line

    async def run(self):
        await self.reply(f"220 {HOSTNAME} ESMTP relayscan-sink")
        while True:
            try:
                raw = await self.readline()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except (asyncio.LimitOverrunError, ValueError):
                await self.reply("500 5.5.2 line too long")
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.helo = line[5:].strip()
                self.reset()
                await self.reply(
                    f"250-{HOSTNAME}\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                    f"250-SIZE {MAX_MESSAGE}\r\n250 SMTPUTF8"
                )
            elif verb == "HELO":
                self.helo = line[5:].strip()
                self.reset()
                await self.reply(f"250 {HOSTNAME}")
            elif verb == "MAIL":
                path = envelope_arg(line, "MAIL FROM:")
                if path is None:
                    await self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                else:
                    self.reset()
                    self.mail_from = path
                    await self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                path = envelope_arg(line, "RCPT TO:")
                if self.mail_from is None:
                    await self.reply("503 5.5.1 Error: need MAIL command")
                elif path is None:
                    await self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
                else:
                    self.rcpts.append(path)
                    await self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not self.rcpts:
                    await self.reply("503 5.5.1 Error: need RCPT command")
                    continue
                await self.reply("354 End data with <CR><LF>.<CR><LF>")
                try:
                    data = await self.read_data()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except (asyncio.LimitOverrunError, ValueError):
                    await self.reply("552 5.3.4 message too big or line too long")
                    return
                name = self.store(data)
                await self.reply(f"250 2.0.0 Ok: stored as {name}")
                self.reset()
            elif verb == "RSET":
                self.reset()
                await self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                await self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                await self.reply("221 2.0.0 Bye")
                return
            elif verb in ("VRFY", "EXPN"):
                await self.reply("252 2.0.0 Cannot verify, will accept")
            else:
                await self.reply("502 5.5.2 Error: command not recognized")

    async def read_data(self):
        chunks = []
        size = 0
        while True:
            raw = await self.readline()
            if raw in (b".\r\n", b".\n"):
                return b"".join(chunks)
            if raw.startswith(b"."):
                raw = raw[1:]  # dot-unstuffing (RFC 5321 4.5.2)
            size += len(raw)
            if size > MAX_MESSAGE:
                raise ValueError("message too big")
            chunks.append(raw)

    def store(self, data):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        name = f"{time.time_ns()}-{next(_seq):06d}.eml"
        head = [f"mail-from: {self.mail_from}"]
        head += [f"rcpt-to: {r}" for r in self.rcpts]
        head += [f"helo: {self.helo}", f"peer: {self.peer}", f"received-at: {now}"]
        blob = ("\n".join(head) + "\n\n").encode("utf-8", "replace") + data
        tmp = os.path.join(self.outdir, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(blob)
        os.rename(tmp, os.path.join(self.outdir, name))
        log(f"stored {name} from {self.mail_from} to {', '.join(self.rcpts)} ({len(data)} bytes, peer {self.peer})")
        return name


def parse_listen(spec, default_dir):
    """'ADDR:PORT' or 'ADDR:PORT=DIR' -> (host, port, dir); loopback only."""
    addr, _, outdir = spec.partition("=")
    outdir = outdir or default_dir
    if not outdir:
        sys.exit(f"sink: no directory for {spec} (use --dir or ADDR:PORT=DIR)")
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"sink: refusing to listen on non-loopback address {host}")
    return host, int(port), outdir


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--listen",
        action="append",
        help="loopback ADDR:PORT[=DIR] to serve (repeatable; default 127.0.26.1:2526)",
    )
    ap.add_argument("--dir", help="directory for messages of listeners without =DIR")
    ap.add_argument("--pidfile", help="write the process id here")
    args = ap.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    servers = []
    for spec in args.listen or ["127.0.26.1:2526"]:
        host, port, outdir = parse_listen(spec, args.dir)
        os.makedirs(outdir, exist_ok=True)

        async def handle(reader, writer, outdir=outdir):
            try:
                await Session(reader, writer, outdir).run()
            except Exception as e:  # one broken session never stops the sink
                log(f"session error: {e!r}")
            finally:
                writer.close()

        servers.append(
            await asyncio.start_server(handle, host, port, limit=MAX_LINE, reuse_address=True)
        )
        log(f"listening on {host}:{port}, storing into {outdir}")
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")

    await stop.wait()
    for server in servers:
        server.close()
    log("stopped")


if __name__ == "__main__":
    asyncio.run(main())
