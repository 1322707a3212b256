/* Ingot's binary example: a tiny HTTP server in C that answers every request with a hello.
 * Built before pushing (the binary buildpack compiles nothing):
 *   cc -O2 -o hello-server hello.c
 * It listens on $PORT (8080 when unset) and handles one connection at a time. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  const char *port_env = getenv("PORT");
  int port = port_env ? atoi(port_env) : 8080;
  signal(SIGPIPE, SIG_IGN);

  int server = socket(AF_INET, SOCK_STREAM, 0);
  if (server < 0) { perror("socket"); return 1; }
  int yes = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons((unsigned short)port);
  if (bind(server, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
  if (listen(server, 64) < 0) { perror("listen"); return 1; }
  printf("binary-hello listening on port %d\n", port);
  fflush(stdout);

  const char *body = "Hello from binary-hello\n";
  char response[256];
  int length = snprintf(response, sizeof response,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                        strlen(body), body);
  for (;;) {
    int client = accept(server, NULL, NULL);
    if (client < 0) continue;
    char request[4096];
    /* The request itself does not matter: every path gets the same answer. */
    if (read(client, request, sizeof request) > 0) {
      if (write(client, response, (size_t)length) < 0) perror("write");
    }
    close(client);
  }
}
