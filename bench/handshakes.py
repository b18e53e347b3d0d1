import ssl, socket, threading, time, statistics
from pathlib import Path
from webhook.devcert import generate_dev_certificate
from webhook.tls import ServingContext
d = Path("/tmp/hsbench"); d.mkdir(exist_ok=True)
cert, key = generate_dev_certificate(d)
serving = ServingContext(cert, key)
def fresh():
    c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH); c.minimum_version = ssl.TLSVersion.TLSv1_2
    c.load_cert_chain(str(cert), str(key)); return c
def run(make_ctx, n=400):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(128)
    port = srv.getsockname()[1]
    def server():
        for _ in range(n):
            conn, _ = srv.accept()
            try:
                t = make_ctx().wrap_socket(conn, server_side=True); t.recv(1); t.close()
            except Exception: conn.close()
    th = threading.Thread(target=server); th.start()
    client = ssl.create_default_context(cafile=str(cert))
    t0 = time.process_time(); w0 = time.perf_counter()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port)); tls = client.wrap_socket(s, server_hostname="localhost"); tls.sendall(b"x"); tls.close()
    th.join(); w = time.perf_counter() - w0
    srv.close()
    return n / w
for rnd in range(3):
    a = run(fresh); b = run(serving.get)
    print(f"round {rnd}: per-connection context {a:.0f} handshakes/s, cached {b:.0f} handshakes/s, ratio {b/a:.2f}")
t0=time.perf_counter()
for _ in range(200): fresh()
print(f"building one context: {(time.perf_counter()-t0)/200*1000:.2f} ms")
