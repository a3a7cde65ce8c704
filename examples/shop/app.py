"""A small shop service: GET /price/<item> and GET /basket, on loopback.

It keeps state (the number of requests served and one long-lived Basket) so
a reload can be seen not to lose it.
"""
import http.server
import sys
import threading

from pricing import Basket, price_of

served = 0
basket = Basket()
basket.add("apple", 2)
basket.add("pear")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        served += 1
        if self.path.startswith("/price/"):
            body = "%s costs %d (request %d)\n" % (self.path[7:], price_of(self.path[7:]), served)
        else:
            body = "basket total %d (request %d)\n" % (basket.total(), served)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("shop listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
