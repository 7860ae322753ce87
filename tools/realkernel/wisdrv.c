/*
 * wisdrv.c - a stand-in for will-it-scale's main.c without hwloc, linked with one
 * upstream tests/<name>.c.  Starts NTASKS tasks (threads with -DTHREADS, else
 * processes), each pinned with sched_setaffinity() to CPU i % ncpus, released
 * together through a pipe as upstream does.  After a warm-up it samples the TLB
 * row of /proc/interrupts and the sum of the tasks' iteration counters, waits,
 * samples again, then stops the tasks and measures the background rate over the
 * same time.  One line of key=value pairs on stdout.
 *
 * usage: wisdrv NTASKS SECONDS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef THREADS
#include <pthread.h>
#define MODE "threads"
#else
#define MODE "processes"
#endif

#define MAX_TASKS 64
#define LINE 256
#define STR(x) #x
#define XSTR(x) STR(x)
#define NAME XSTR(TEST)                     /* one counter per cache line, as upstream */

extern char *testcase_description;
extern void testcase(unsigned long long *iterations, unsigned long nr);

static char *counters;
static int pipefd[2];

struct task { int cpu; unsigned long nr; };

static unsigned long long *counter(unsigned long i)
{
	return (unsigned long long *)(counters + i * LINE);
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		exit(1);
	}
}

static volatile int *tid_slot(unsigned long i)
{
	return (volatile int *)(counters + i * LINE + 64);
}

static void *run(void *p)
{
	struct task *t = p;
	struct pollfd pfd = { pipefd[0], POLLIN, 0 };
	struct sched_param sp = { .sched_priority = 1 };
	pin(t->cpu);
	/* under chrt -f 2 the tasks drop to FIFO 1, so the sampling thread can preempt them */
	if (sched_getscheduler(0) == SCHED_FIFO)
		sched_setscheduler(0, SCHED_FIFO, &sp);
	*tid_slot(t->nr) = gettid();
#ifdef THREADS
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);   /* as upstream */
#endif
	while (poll(&pfd, 1, -1) == -1 && errno == EINTR)
		;
	testcase(counter(t->nr), t->nr);
	return NULL;
}

static long long tlb_row(void)
{
	char buf[4096];
	long long sum = 0;
	FILE *f = fopen("/proc/interrupts", "r");
	if (!f) {
		perror("/proc/interrupts");
		exit(1);
	}
	while (fgets(buf, sizeof(buf), f)) {
		char *s = buf;
		while (*s == ' ')
			s++;
		if (strncmp(s, "TLB:", 4))
			continue;
		s += 4;
		for (;;) {
			char *end;
			long long v = strtoll(s, &end, 10);
			if (end == s)
				break;
			sum += v;
			s = end;
		}
	}
	fclose(f);
	return sum;
}

/* steal time of all CPUs, in USER_HZ ticks: time the host ran something else while
   a vCPU wanted to run; a preempted target vCPU gets no IPI under KVM's PV flush */
static long long steal_ticks(void)
{
	char buf[512];
	long long sum = 0, v[8];
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, "cpu", 3) || buf[3] == ' ')
			continue;
		if (sscanf(buf, "%*s %lld %lld %lld %lld %lld %lld %lld %lld",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
			sum += v[7];
	}
	fclose(f);
	return sum;
}

/* nanoseconds the tasks spent on a CPU (first field of /proc/TID/schedstat) */
static double oncpu_ns(int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++) {
		char path[64];
		unsigned long long run = 0;
		snprintf(path, sizeof(path), "/proc/%d/schedstat", *tid_slot(i));
		FILE *f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%llu", &run) != 1)
				run = 0;
			fclose(f);
		}
		sum += run;
	}
	return sum;
}

static unsigned long long total(int n)
{
	unsigned long long s = 0;
	for (int i = 0; i < n; i++)
		s += __atomic_load_n(counter(i), __ATOMIC_RELAXED);
	return s;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s NTASKS SECONDS\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]);
	double secs = atof(argv[2]);
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct task tasks[MAX_TASKS];
	if (n < 1 || n > MAX_TASKS) {
		fprintf(stderr, "NTASKS must be 1..%d\n", MAX_TASKS);
		return 2;
	}
	counters = mmap(NULL, MAX_TASKS * LINE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counters == MAP_FAILED || pipe(pipefd)) {
		perror("setup");
		return 1;
	}
#ifdef THREADS
	pthread_t ths[MAX_TASKS];
#else
	pid_t pids[MAX_TASKS];
#endif
	for (int i = 0; i < n; i++) {
		tasks[i].cpu = i % ncpus;
		tasks[i].nr = i;
#ifdef THREADS
		if (pthread_create(&ths[i], NULL, run, &tasks[i])) {
			perror("pthread_create");
			return 1;
		}
#else
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (!pids[i]) {
			run(&tasks[i]);
			_exit(0);
		}
#endif
	}
	if (write(pipefd[1], "x", 1) != 1) {
		perror("write");
		return 1;
	}
	nap(0.5);                                 /* warm-up */
	long long s0 = steal_ticks();
	double r0 = oncpu_ns(n);
	long long t0 = tlb_row();
	unsigned long long i0 = total(n);
	double w0 = now();
	nap(secs);
	long long t1 = tlb_row();
	long long s1 = steal_ticks();
	double r1 = oncpu_ns(n);
	unsigned long long i1 = total(n);
	double w1 = now();
#ifdef THREADS
	for (int i = 0; i < n; i++)
		pthread_cancel(ths[i]);
	for (int i = 0; i < n; i++)
		pthread_join(ths[i], NULL);
#else
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
#endif
	/* background: the same time with the tasks gone */
	long long b0 = tlb_row();
	nap(w1 - w0);
	long long b1 = tlb_row();
	unsigned long long it = i1 - i0;
	long long ipis = t1 - t0;
	printf("test=" NAME " mode=%s tasks=%d seconds=%.3f iterations=%llu ipis=%lld "
	       "per_iter=%.6f per_32768=%.3f background=%lld steal_pct=%.1f oncpu_pct=%.1f\n",
	       MODE, n, w1 - w0, it, ipis,
	       it ? (double)ipis / it : 0.0, it ? ipis * 32768.0 / it : 0.0, b1 - b0,
	       100.0 * (s1 - s0) / sysconf(_SC_CLK_TCK) / ((w1 - w0) * ncpus),
	       100.0 * (r1 - r0) / 1e9 / ((w1 - w0) * n));
	fflush(stdout);
	_exit(0);
}
