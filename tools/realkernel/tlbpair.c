/*
 * tlbpair.c - count real TLB-shootdown IPIs for simple 2-thread patterns.
 *
 * usage: tlbpair PATTERN SIBLING ITER
 *   PATTERN  munmap | madvise | mprotect
 *   SIBLING  spin   (thread B busy-reads its own malloc'd array, same mm)
 *            sleep  (thread B blocks in pause() for the whole run)
 *   ITER     loop iterations for thread A (e.g. 20000)
 *
 * Thread A (main) is pinned to CPU 0, thread B to CPU 1.  A reads the
 * "TLB:" row of /proc/interrupts right before and right after its loop,
 * then sleeps for the same wall time and reads it again, which gives an
 * idle baseline with the sibling still in the same mode.
 *
 * Output: one line of key=value pairs (see printf at the bottom).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NPAGES 4           /* pages per operation */
#define NCPU   2

static long pagesz;
static int irq_fd = -1;
static char irq_buf[1 << 16];      /* static: no malloc/mmap while measuring */
static atomic_int b_ready;
static volatile long b_sink;

static void die(const char *what) { perror(what); exit(1); }

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    int e = pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    if (e) { errno = e; die("pthread_setaffinity_np"); }
}

/* Parse the per-CPU columns of the "TLB:" row.  pread() on a file opened
 * once avoids stdio buffers (malloc -> possible mmap/munmap -> own flushes). */
static void read_tlb(unsigned long long out[NCPU])
{
    ssize_t n = pread(irq_fd, irq_buf, sizeof irq_buf - 1, 0);
    if (n <= 0) die("pread /proc/interrupts");
    irq_buf[n] = 0;
    char *p = strstr(irq_buf, "\n TLB:");
    if (!p) p = strstr(irq_buf, "TLB:");
    if (!p) { fprintf(stderr, "no TLB: row\n"); exit(1); }
    p = strchr(p, ':') + 1;
    for (int c = 0; c < NCPU; c++) out[c] = strtoull(p, &p, 10);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Thread B: keeps the same mm loaded on CPU 1 (spin) or leaves CPU 1 idle,
 * i.e. in lazy-TLB mode with our mm possibly still loaded (sleep). */
static void *sibling(void *arg)
{
    int spin = *(int *)arg;
    pin(1);
    if (!spin) { atomic_store(&b_ready, 1); for (;;) pause(); }
    volatile long *a = malloc(64 * sizeof *a);   /* private data, same mm */
    for (int i = 0; i < 64; i++) a[i] = i;
    atomic_store(&b_ready, 1);
    for (;;) {                                   /* only reads: no flushes */
        long s = 0;
        for (int i = 0; i < 64; i++) s += a[i];
        b_sink = s;
    }
    return NULL;
}

static void touch_w(char *p) { for (int i = 0; i < NPAGES; i++) ((volatile char *)p)[i * pagesz] = (char)i; }
static long touch_r(char *p) { long s = 0; for (int i = 0; i < NPAGES; i++) s += ((volatile char *)p)[i * pagesz]; return s; }

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s munmap|madvise|mprotect spin|sleep ITER\n", argv[0]);
        return 2;
    }
    const char *pat = argv[1];
    int spin = !strcmp(argv[2], "spin");
    if (!spin && strcmp(argv[2], "sleep")) { fprintf(stderr, "bad sibling mode\n"); return 2; }
    long iter = atol(argv[3]);
    pagesz = sysconf(_SC_PAGESIZE);
    size_t len = NPAGES * pagesz;

    irq_fd = open("/proc/interrupts", O_RDONLY);
    if (irq_fd < 0) die("open /proc/interrupts");

    pin(0);
    pthread_t tb;
    if (pthread_create(&tb, NULL, sibling, &spin)) die("pthread_create");
    while (!atomic_load(&b_ready)) sched_yield();
    usleep(200000);               /* let B settle (spinning, or idle/lazy) */

    /* patterns 2 and 3 reuse one mapping, created (and faulted) up front */
    char *buf = NULL;
    if (strcmp(pat, "munmap")) {
        buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) die("mmap");
        touch_w(buf);
    }
    int mode = !strcmp(pat, "munmap") ? 1 : !strcmp(pat, "madvise") ? 2 : !strcmp(pat, "mprotect") ? 3 : 0;
    if (!mode) { fprintf(stderr, "bad pattern\n"); return 2; }

    unsigned long long t0[NCPU], t1[NCPU], t2[NCPU];
    long sink = 0;
    read_tlb(t0);
    double s0 = now();
    for (long i = 0; i < iter; i++) {
        if (mode == 1) {                        /* munmap-pair */
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) die("mmap");
            touch_w(p);
            if (munmap(p, len)) die("munmap");
        } else if (mode == 2) {                 /* madvise-pair */
            touch_w(buf);
            if (madvise(buf, len, MADV_DONTNEED)) die("madvise");
        } else {                                /* mprotect-pair */
            touch_w(buf);
            if (mprotect(buf, len, PROT_READ)) die("mprotect RO");
            sink += touch_r(buf);
            if (mprotect(buf, len, PROT_READ | PROT_WRITE)) die("mprotect RW");
        }
    }
    double s1 = now();
    read_tlb(t1);

    /* idle baseline: same wall time, sibling still in the same mode */
    double el = s1 - s0;
    struct timespec ts = { (time_t)el, (long)((el - (time_t)el) * 1e9) };
    nanosleep(&ts, NULL);
    read_tlb(t2);

    unsigned long long d0 = t1[0] - t0[0], d1 = t1[1] - t0[1];
    unsigned long long b0 = t2[0] - t1[0], b1 = t2[1] - t1[1];
    double per_iter = iter ? (double)(d0 + d1) / iter : 0;
    double per_call = iter ? (double)(d0 + d1) / (iter * (mode == 3 ? 2 : 1)) : 0;
    printf("pattern=%s sibling=%s iter=%ld pages=%d elapsed_s=%.6f "
           "cpu0=%llu cpu1=%llu total=%llu per_iter=%.4f per_call=%.4f "
           "base_cpu0=%llu base_cpu1=%llu base_total=%llu sink=%ld\n",
           pat, argv[2], iter, NPAGES, el, d0, d1, d0 + d1, per_iter, per_call,
           b0, b1, b0 + b1, sink & 1);
    return 0;
}
