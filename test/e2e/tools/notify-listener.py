#!/usr/bin/env python3
# A service manager's notification socket for tests: binds an AF_UNIX datagram socket (a path, or
# '@name' for an abstract socket, as $NOTIFY_SOCKET names it), prints "listening", then one JSON line per
# datagram received: {"t": epoch ms, "data": text}. Runs until stdin closes or it is killed.
import json, os, select, socket, sys, time

addr = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind('\0' + addr[1:] if addr.startswith('@') else addr)
print('listening', flush=True)
while True:
    ready, _, _ = select.select([sock, sys.stdin], [], [])
    if sys.stdin in ready and not os.read(sys.stdin.fileno(), 4096):
        break
    if sock in ready:
        data = sock.recv(65536)
        print(json.dumps({'t': int(time.time() * 1000), 'data': data.decode('utf-8', 'replace')}), flush=True)
