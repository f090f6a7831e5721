#!/usr/bin/python3
# HTTP/1.1 keep-alive server: /len/N answers N bytes with Content-Length (404 for anything
# else), /chunked/N N bytes chunked, /close/N N bytes ended by closing the connection, a POST
# the length of its body. Prints LISTENING <port>; serves until stdin closes.
# Used by the tests through harness.start_http_server().
import socket, ssl, sys, threading
cert, key = sys.argv[1:3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("LISTENING", ls.getsockname()[1], flush=True)

def body_of(n):
    return bytes((i * 7 + 3) % 251 for i in range(n))

def serve(c):
    s = ctx.wrap_socket(c, server_side=True)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n = int(hdrs.get("content-length", "0"))
        while len(buf) < n:
            buf += s.recv(65536)
        body, buf = buf[:n], buf[n:]
        if path.startswith("/close/"):
            # No length: the body ends when the connection does.
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
                      body_of(int(path.split("/")[2])))
            s.unwrap()
            s.close()
            return
        if path.startswith("/chunked/"):
            data = body_of(int(path.split("/")[2]))
            out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: s=secret\r\n\r\n"
            for i in range(0, len(data), 1000):
                part = data[i:i + 1000]
                out += b"%x\r\n" % len(part) + part + b"\r\n"
            s.sendall(out + b"0\r\n\r\n")
        elif method == "POST":
            reply = b"got %d" % len(body)
            s.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(reply) + reply)
        else:
            data = body_of(int(path.split("/")[2])) if path.startswith("/len/") else b""
            code = b"200 OK" if data or path == "/len/0" else b"404 Not Found"
            s.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Length: %d\r\n\r\n" % len(data) + data)

def accept():
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
