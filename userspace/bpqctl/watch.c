// SPDX-License-Identifier: GPL-2.0
/*
 * A live table of the queues, redrawn every interval until SIGINT:
 * depth as a bar, enqueue and dequeue rates over the last interval, drops,
 * and for the window strategy its window and state.
 * On a terminal each table replaces the one before and is cut to the size
 * of the window, so that neither a narrow window nor many queues make it
 * wrap or scroll.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"watch [Q] [--interval MS] [--count N]";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Sleep for ms milliseconds or until SIGINT or SIGTERM. Both are blocked
 * outside this sleep, so that one arriving just before it ends it too.
 */
static void pause_ms(uint64_t ms, const sigset_t *waitmask)
{
	double end = now_s() + ms / 1e3, left;
	struct timespec ts;

	while (!stop && (left = end - now_s()) > 0) {
		ts.tv_sec = left;
		ts.tv_nsec = (left - ts.tv_sec) * 1e9;
		pselect(0, NULL, NULL, NULL, &ts, waitmask);
	}
}

/* The terminal's size; 0 when stdout is no terminal, or for no limit. */
struct screen {
	int tty;
	unsigned int cols, rows;
};

static void screen_size(struct screen *scr)
{
	struct winsize ws;

	scr->cols = 0;
	scr->rows = 0;
	if (scr->tty && !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws)) {
		scr->cols = ws.ws_col;
		scr->rows = ws.ws_row;
	}
}

/* One line of the table, cut to the terminal's width. */
static void __attribute__((format(printf, 2, 3)))
line(const struct screen *scr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (len >= (int)sizeof(buf))
		len = sizeof(buf) - 1;
	if (scr->cols && (unsigned int)len > scr->cols)
		len = scr->cols;
	printf("%.*s\n", len, buf);
}

#define BAR_WIDTH 20

static void bar(char *out, unsigned int percent)
{
	unsigned int i, fill = (percent > 100 ? 100 : percent) * BAR_WIDTH / 100;

	out[0] = '[';
	for (i = 0; i < BAR_WIDTH; i++)
		out[1 + i] = i < fill ? '#' : '.';
	out[1 + BAR_WIDTH] = ']';
	out[2 + BAR_WIDTH] = '\0';
}

static const struct queue_snap *find(const struct queue_snap *s, int n,
				     unsigned int index)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i].index == index)
			return &s[i];
	return NULL;
}

/* The window strategy's congestion window and state; "-" elsewhere */
static void window(char *out, size_t len, const struct queue_snap *s)
{
	const char *state = bpq_window_state_name(s->st.window_state);

	if (s->cfg.strategy != BPQ_STRATEGY_WINDOW)
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%u %s", s->st.cwnd, state ? state : "?");
}

static void draw(const struct screen *scr, const struct queue_snap *s, int n,
		 const struct queue_snap *prev, int nprev, double dt)
{
	const struct queue_snap *p;
	char b[BAR_WIDTH + 3], w[32];
	int i, fit = n;
	double enq, deq;

	/*
	 * The last row stays free for the cursor: a newline there would
	 * scroll the header away. Queues that do not fit are counted.
	 */
	if (scr->rows >= 3 && (unsigned int)n > scr->rows - 2)
		fit = scr->rows - 3;
	line(scr, "%-7s %-16s %-11s %-22s %-17s %9s %9s %10s  %s", "QUEUE",
	     "NAME", "STRATEGY", "DEPTH", "MSGS/CAPACITY", "ENQ/s", "DEQ/s",
	     "DROPS", "WINDOW");
	for (i = 0; i < fit; i++) {
		p = find(prev, nprev, s[i].index);
		enq = deq = 0;
		if (p && dt > 0 && s[i].st.enqueued_msgs >= p->st.enqueued_msgs &&
		    s[i].st.dequeued_msgs >= p->st.dequeued_msgs) {
			enq = (s[i].st.enqueued_msgs - p->st.enqueued_msgs) / dt;
			deq = (s[i].st.dequeued_msgs - p->st.dequeued_msgs) / dt;
		}
		bar(b, s[i].st.utilization);
		window(w, sizeof(w), &s[i]);
		line(scr, "bpq%-4u %-16s %-11s %s %8" PRIu64
		     "/%-8u %9.0f %9.0f %10" PRIu64 "  %s", s[i].index,
		     s[i].name, snap_strategy(&s[i]), b,
		     (uint64_t)s[i].st.depth_msgs, s[i].cfg.capacity_msgs, enq,
		     deq, (uint64_t)(s[i].st.dropped_newest +
				     s[i].st.dropped_oldest + s[i].st.flushed),
		     w);
	}
	if (fit < n)
		line(scr, "... and %d more", n - fit);
	fflush(stdout);
}

static int load(const char *q, struct queue_snap **s, int *n)
{
	int fd, idx, ret;

	if (!q)
		return load_all("watch", s, n);
	*s = calloc(1, sizeof(**s));
	if (!*s)
		return EXIT_FAIL;
	fd = open_queue("watch", q, O_QUERY, &idx);
	if (fd < 0)
		return EXIT_FAIL;
	ret = snap_load_fd(fd, idx, *s);
	close(fd);
	if (ret < 0) {
		err_msg("watch %s: %s", q, strerror(-ret));
		return EXIT_FAIL;
	}
	*n = 1;
	return EXIT_OK;
}

int watch_main(int argc, char **argv)
{
	struct queue_snap *cur = NULL, *prev = NULL;
	uint64_t interval = 1000, count = 0, shown = 0;
	int i, n = 0, nprev = 0, status = EXIT_OK;
	static char frame[65536];
	sigset_t block, orig, waitmask;
	const char *q = NULL;
	struct screen scr;
	struct sigaction sa;
	double t, tprev = 0;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		if (!strcmp(argv[i], "--interval") || !strcmp(argv[i], "-i") ||
		    !strcmp(argv[i], "--count") || !strcmp(argv[i], "-c")) {
			int is_count = argv[i][1] == 'c' || argv[i][2] == 'c';

			if (i + 1 >= argc ||
			    parse_u64(argv[i + 1], is_count ? UINT64_MAX : 3600000,
				      is_count ? &count : &interval) ||
			    (!is_count && !interval))
				return usage_fail(usage, "watch: bad value for '%s'",
						  argv[i]);
			i++;
		} else if (argv[i][0] == '-' || q) {
			return usage_fail(usage, "watch: unexpected '%s'",
					  argv[i]);
		} else {
			q = argv[i];
		}
	}
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	waitmask = orig;
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGTERM);
	scr.tty = isatty(STDOUT_FILENO);
	/* a table goes out in one write: no flicker line by line */
	if (scr.tty)
		setvbuf(stdout, frame, _IOFBF, sizeof(frame));
	while (!stop) {
		screen_size(&scr);
		if (scr.tty) {
			/* before load(): its errors on stderr stay in view */
			fputs("\033[H\033[2J", stdout);
			fflush(stdout);
		}
		status = load(q, &cur, &n);
		if (status != EXIT_OK && q)
			break;
		t = now_s();
		draw(&scr, cur, n, prev, nprev, t - tprev);
		free(prev);
		prev = cur;
		nprev = n;
		cur = NULL;
		tprev = t;
		if (count && ++shown >= count)
			break;
		pause_ms(interval, &waitmask);
	}
	free(cur);
	free(prev);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return status;
}
