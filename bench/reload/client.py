"""The smallest client a Python reload tool could have: one request to the
in-target server on loopback, print the answer. Run as `python -S -I
client.py PORT REQUEST_JSON` so its start-up is as cheap as Python allows."""
import socket
import sys

with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as conn:
    conn.sendall(sys.argv[2].encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
sys.stdout.write(data.decode())
