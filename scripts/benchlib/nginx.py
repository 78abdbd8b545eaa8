"""nginx as a ceiling: one configuration frame (no access log, long keep-alive, temp files
in the run's folder) around each benchmark's own `http` directives, started in the
foreground as a process the run owns."""
import os

from . import procs
from .core import tail_of

FRAME = """daemon off;
master_process on;
worker_processes auto;
{user_line}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
{http}
}}
"""


def start(bench, http, ready_url):
    """Writes the configuration with `http` (the servers, already formatted) into the run's
    nginx folder, starts nginx and waits until `ready_url` answers; returns the process."""
    folder = bench.path("nginx")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "nginx.conf"), "w") as f:
        f.write(FRAME.format(user_line="user root;" if os.getuid() == 0 else "", dir=folder, http=http))
    p = bench.start(["nginx", "-e", f"{folder}/error.log", "-p", folder, "-c", f"{folder}/nginx.conf"],
                    log=bench.path("nginx.log"), append=True)
    if not procs.wait_ready(ready_url, p):
        bench.die(f"nginx did not become ready ({ready_url}); log: {tail_of(bench.path('nginx.log'))}")
    return p
