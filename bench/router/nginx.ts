// The peer: Debian's nginx as a reverse proxy with the same work as the router — a host map
// with the same routes, upstream keep-alive, an access log to a file — run from a generated
// config in a temp dir (own pid, logs and temp paths, daemon off).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NginxSetup {
  dir: string;
  port: number;
  backendPort: number;
  workers: number;
  hosts: string[];
  accessLog: boolean;
}

export function writeNginxConfig(s: NginxSetup): string {
  const file = join(s.dir, 'nginx.conf');
  const map = s.hosts.map((h) => `    ${h} backend;`).join('\n');
  writeFileSync(
    file,
    `worker_processes ${s.workers};
daemon off;
pid ${join(s.dir, 'nginx.pid')};
error_log ${join(s.dir, 'nginx-error.log')} warn;
events { worker_connections 4096; }
http {
  ${s.accessLog ? `access_log ${join(s.dir, 'nginx-access.log')} combined buffer=64k flush=1s;` : 'access_log off;'}
  client_body_temp_path ${join(s.dir, 'nginx-body')};
  proxy_temp_path ${join(s.dir, 'nginx-proxy')};
  fastcgi_temp_path ${join(s.dir, 'nginx-fastcgi')};
  uwsgi_temp_path ${join(s.dir, 'nginx-uwsgi')};
  scgi_temp_path ${join(s.dir, 'nginx-scgi')};
  map_hash_max_size 262144;
  map_hash_bucket_size 128;
  map $host $route {
    default unknown;
${map}
  }
  upstream backend { server 127.0.0.1:${s.backendPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${s.port};
    location / {
      if ($route = unknown) { return 404; }
      proxy_pass http://$route;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`,
  );
  return file;
}
