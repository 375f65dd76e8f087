/*
 * zmqbench: the libzmq side of curvezmq's performance comparison (bench/compare).
 *
 *   zmqbench thr SIZE COUNT [curve|null]   PUSH -> PULL over TCP loopback
 *   zmqbench hs COUNT                      sequential REQ handshakes against a REP
 *
 * Sender and receiver each have their own context, so their own I/O thread, in one
 * process. Throughput is timed from the first message received to the last, over
 * COUNT-1 messages; MB is 10^6 payload bytes. A handshake is a new REQ socket, connect,
 * one 4-byte round trip and close. The last line on stdout is the result, in the format
 * that "curvezmq bench" prints:
 *
 *   impl=libzmq-<mech> mode=thr size=N count=N msgs_per_s=<int> MB_per_s=<decimal>
 *   impl=libzmq-curve mode=hs count=N handshakes_per_s=<int>
 *
 * Build: cc -O2 -o zmqbench zmqbench.c -lzmq -lpthread  (Debian: libzmq3-dev)
 */
#include <zmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char server_public[41], server_secret[41], client_public[41], client_secret[41];
static char endpoint[64];

static void die(const char *what)
{
    fprintf(stderr, "zmqbench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_server(void *s)
{
    int one = 1;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, server_secret, 40))
        die("server keys");
}

static void set_client(void *s)
{
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_public, 40) ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, client_public, 40) ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, client_secret, 40))
        die("client keys");
}

static void bind_any(void *s)
{
    size_t len = sizeof endpoint;
    if (zmq_bind(s, "tcp://127.0.0.1:*") || zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &len))
        die("bind");
}

struct sender {
    int size, count, curve;
};

static void *send_all(void *arg)
{
    struct sender *p = arg;
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    if (p->curve)
        set_client(push);
    if (zmq_connect(push, endpoint))
        die("connect");
    char *buf = calloc(1, p->size ? p->size : 1);
    for (int i = 0; i < p->count; i++)
        if (zmq_send(push, buf, p->size, 0) < 0)
            die("send");
    free(buf);
    zmq_close(push); /* the default linger lets the rest drain */
    zmq_ctx_term(ctx);
    return NULL;
}

static int throughput(int size, int count, int curve)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    if (curve)
        set_server(pull);
    bind_any(pull);
    struct sender p = {size, count, curve};
    pthread_t th;
    pthread_create(&th, NULL, send_all, &p);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    double first = 0;
    for (int i = 0; i < count; i++) {
        if (zmq_msg_recv(&msg, pull, 0) != size)
            die("recv");
        if (i == 0)
            first = now();
    }
    double el = now() - first;
    zmq_msg_close(&msg);
    pthread_join(th, NULL);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    if (el <= 0)
        el = 1e-9;
    double n = count - 1;
    printf("impl=libzmq-%s mode=thr size=%d count=%d msgs_per_s=%lld MB_per_s=%.3f\n",
           curve ? "curve" : "null", size, count, (long long) (n / el), n * size / el / 1e6);
    return 0;
}

static void *echo(void *rep)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, rep, 0) >= 0)
        if (zmq_msg_send(&msg, rep, 0) < 0)
            break;
    zmq_msg_close(&msg);
    return NULL;
}

static int handshakes(int count)
{
    void *sctx = zmq_ctx_new();
    void *rep = zmq_socket(sctx, ZMQ_REP);
    set_server(rep);
    bind_any(rep);
    pthread_t th;
    pthread_create(&th, NULL, echo, rep);
    void *ctx = zmq_ctx_new();
    char buf[4];
    double start = now();
    for (int i = 0; i < count; i++) {
        void *req = zmq_socket(ctx, ZMQ_REQ);
        int zero = 0;
        zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
        set_client(req);
        if (zmq_connect(req, endpoint))
            die("connect");
        if (zmq_send(req, "ping", 4, 0) != 4 || zmq_recv(req, buf, sizeof buf, 0) != 4)
            die("round trip");
        zmq_close(req);
    }
    double el = now() - start;
    zmq_ctx_term(ctx);
    zmq_ctx_shutdown(sctx); /* ends the echo thread's recv */
    pthread_join(th, NULL);
    zmq_close(rep);
    zmq_ctx_term(sctx);
    printf("impl=libzmq-curve mode=hs count=%d handshakes_per_s=%lld\n", count, (long long) (count / el));
    return 0;
}

int main(int argc, char **argv)
{
    if (zmq_curve_keypair(server_public, server_secret) || zmq_curve_keypair(client_public, client_secret))
        die("zmq_curve_keypair (libzmq without CURVE?)");
    if (argc >= 4 && strcmp(argv[1], "thr") == 0)
        return throughput(atoi(argv[2]), atoi(argv[3]), !(argc >= 5 && strcmp(argv[4], "null") == 0));
    if (argc == 3 && strcmp(argv[1], "hs") == 0)
        return handshakes(atoi(argv[2]));
    fprintf(stderr, "usage: zmqbench thr SIZE COUNT [curve|null] | zmqbench hs COUNT\n");
    return 1;
}
