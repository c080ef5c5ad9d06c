// SPDX-License-Identifier: GPL-2.0
/*
 * bpqd: one machine's queues in a cluster's backpressure, through Redis.
 *
 * Every report interval it reads the queues of its file (bpqctl apply's
 * YAML), writes what they show under keys that expire (PREFIX node:NODE
 * and PREFIX node:NODE:QUEUE, hashes, with the node in the set PREFIX
 * nodes), reads the other nodes' and applies the file's policy here:
 *
 *   least_loaded  this node's queues are held (+cluster) while another
 *                 node is less loaded by more than the margin, so that
 *                 work goes there; released otherwise.
 *   budget        messages a second for one queue, split among the nodes
 *                 that report it by their demand, applied here as the
 *                 queue's rate (strategy adaptive, min_rate = max_rate);
 *                 a share not renewed within the grace period lapses.
 *
 * A change of its load or its decision is published on the channel
 * PREFIX events, and a message there from another node makes it read the
 * view again at once. If Redis cannot be reached it keeps its decisions
 * for the grace period, then fails open: it clears its holds and lifts the
 * budget, says so once, and tries again with a growing delay. A node that
 * stops reporting drops out of the others' view when its keys expire.
 *
 * It also installs the file's monitoring thresholds as triggers (bpq(4))
 * and logs their firing, and can write a node_exporter textfile.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bpqd.h"
#include "redis.h"

const char *prog = "bpqd";

static const char usage[] =
	"usage: bpqd [-c FILE] [--node ID] [--textfile DIR] [--status FILE]\n"
	"            [--check] [--once] [-v]\n"
	"  -c, --config FILE   bpqctl apply's YAML with a cluster section\n"
	"                      (default /etc/bpq/bpq.yaml)\n"
	"  --node ID           this node's name (default: the file's node_id,\n"
	"                      else the host's name)\n"
	"  --textfile DIR      write DIR/bpq.prom for node_exporter\n"
	"  --status FILE       where bpqctl cluster reads the cluster as bpqd\n"
	"                      sees it (default /run/bpqd/status.json)\n"
	"  --check             check the file and say what would be done\n"
	"  --once              one report and decision, then exit\n"
	"  -v                  log every decision, not only changes\n";

/* Alert thresholds as triggers: one file of the queue each */
static const struct {
	unsigned int metric;
	const char *name;
} alert_triggers[NR_ALERTS] = {
	[ALERT_UTILIZATION] = { BPQ_TRIGGER_UTILIZATION, "queue_utilization" },
	[ALERT_DEPTH] = { BPQ_TRIGGER_NONE, "queue_depth" },
	[ALERT_DROP_RATE] = { BPQ_TRIGGER_DROPS, "drop_rate" },
	[ALERT_BLOCKED] = { BPQ_TRIGGER_STALL_SOME, "blocked_time" },
	[ALERT_HEAD_AGE] = { BPQ_TRIGGER_HEAD_AGE, "head_age" },
};

#define TRIGGER_WINDOW_MS	10000

/* A queue of the file, on this machine */
struct lq {
	const struct apply_queue *aq;
	int index;		/* -1: not there */
	int fd;
	struct bpq_stats st;
	uint64_t prev_offered, prev_waits, prev_ms;
	unsigned int util;
	uint64_t offered;	/* messages a second offered, last interval */
	int waited;		/* its writers waited, last interval */
	int held;		/* bpqd's +cluster hold is on */
	int limited;		/* budget: the rate is bpqd's */
	struct bpq_config saved;	/* its settings before */
	uint64_t share;
	int trig_fd[NR_ALERTS];
	uint64_t fired[NR_ALERTS];
};

static struct {
	struct apply_file af;
	const struct apply_cluster *cl;
	char node[64];
	char channel[192];
	struct redis r;
	int up;			/* Redis answers */
	int ever_up;
	int failed_open;	/* holds cleared after the grace period */
	uint64_t down_since, next_try, backoff;
	struct lq *q;
	int nq;
	struct node nodes[BPQD_NODES_MAX];
	int nn, self;
	unsigned int load, published_load;
	int hold, published_hold;
	uint64_t next_report, eval_at, started;
	uint64_t ops_at_start;
	const char *textfile, *status;
	char status_txt[4096];	/* "": no status files */
	int verbose, once;
	/* the system level: /proc/pressure/memory's trigger */
	int psi_fd;
	int system_held;
	uint64_t psi_fired;		/* when it last fired, 0: never */
	volatile sig_atomic_t stop;
} d = {
	.psi_fd = -1,
	.status = "/run/bpqd/status.json",
	.published_hold = -1,
	.published_load = ~0U,
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bpqd: %s: ", d.node);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void on_signal(int sig)
{
	(void)sig;
	d.stop = 1;
}

/* --- this machine's queues ------------------------------------------ */

static void lq_close(struct lq *q)
{
	int a;

	for (a = 0; a < NR_ALERTS; a++) {
		if (q->trig_fd[a] >= 0)
			close(q->trig_fd[a]);
		q->trig_fd[a] = -1;
	}
	if (q->fd >= 0)
		close(q->fd);
	q->fd = q->index = -1;
	q->held = q->limited = 0;
}

/* A trigger for each of the queue's alert thresholds bpq(4) can watch */
static void lq_triggers(struct lq *q)
{
	const struct apply_queue *aq = q->aq;
	uint64_t t;
	int a, fd, ret;

	for (a = 0; a < NR_ALERTS; a++) {
		if (!(aq->alerts & (1U << a)) || !alert_triggers[a].metric)
			continue;
		t = aq->threshold[a];
		switch (a) {
		case ALERT_BLOCKED:	/* ms a minute: µs a window */
			t = t * 1000 * TRIGGER_WINDOW_MS / 60000;
			if (t > TRIGGER_WINDOW_MS * 1000ULL)
				t = TRIGGER_WINDOW_MS * 1000ULL;
			break;
		case ALERT_HEAD_AGE:	/* ms: µs */
			t *= 1000;
			break;
		case ALERT_DROP_RATE:	/* any drop, then the rate is judged */
			t = 1;
			break;
		}
		if (!t)
			t = 1;
		fd = bpq_open(aq->name, O_ACCMODE | O_NONBLOCK | O_CLOEXEC);
		ret = fd < 0 ? fd : bpq_trigger(fd, alert_triggers[a].metric,
						 t, TRIGGER_WINDOW_MS);
		if (ret < 0) {
			say("queue %s: trigger %s: %s", aq->name,
			    alert_triggers[a].name, strerror(-ret));
			if (fd >= 0)
				close(fd);
			continue;
		}
		q->trig_fd[a] = fd;
	}
}

static void lq_refresh(struct lq *q, uint64_t now)
{
	uint64_t offered, waits, dt;
	int idx;

	if (q->index < 0) {
		idx = bpq_lookup(q->aq->name);
		if (idx < 0)
			return;
		q->fd = bpq_open(q->aq->name, O_ACCMODE | O_NONBLOCK |
				 O_CLOEXEC);
		if (q->fd < 0)
			return;
		q->index = idx;
		q->prev_ms = 0;
		lq_triggers(q);
		if (d.system_held)
			bpq_hold(idx, BPQ_HOLD_SYSTEM, 1);
		say("queue %s: bpq%d", q->aq->name, idx);
	}
	if (bpq_get_stats(q->fd, &q->st) < 0) {
		/* destroyed: looked up again next time */
		say("queue %s: gone", q->aq->name);
		lq_close(q);
		return;
	}
	q->util = q->st.utilization;
	offered = q->st.enqueued_msgs + q->st.dropped_newest;
	waits = q->st.backpressure_applied + q->st.throttled_ns / 1000000;
	dt = now - q->prev_ms;
	if (q->prev_ms && dt) {
		q->offered = (offered - q->prev_offered) * 1000 / dt;
		q->waited = waits != q->prev_waits || q->st.writers_waiting;
	}
	q->prev_offered = offered;
	q->prev_waits = waits;
	q->prev_ms = now;
}

static void set_hold(struct lq *q, int on)
{
	int ret;

	if (q->index < 0 || q->held == on)
		return;
	ret = bpq_hold(q->index, BPQ_HOLD_CLUSTER, on);
	if (ret < 0 && ret != -ENOENT) {
		say("queue %s: hold %scluster: %s", q->aq->name,
		    on ? "+" : "-", strerror(-ret));
		return;
	}
	q->held = on;
}

/* budget: the queue's rate is the share (0: its own settings back) */
static void set_share(struct lq *q, uint64_t share)
{
	struct bpq_config cfg;
	int ret;

	if (q->index < 0 || (!share && !q->limited) ||
	    (share && q->limited && q->share == share))
		return;
	if (!share) {
		ret = bpq_set_config(q->fd, &q->saved);
		q->limited = 0;
		q->share = 0;
		if (ret < 0)
			say("queue %s: settings back: %s", q->aq->name,
			    strerror(-ret));
		return;
	}
	if (!q->limited && bpq_get_config(q->fd, &q->saved) < 0)
		return;
	cfg = q->saved;
	cfg.strategy = BPQ_STRATEGY_ADAPTIVE;
	cfg.min_rate = cfg.max_rate = share > UINT32_MAX ? UINT32_MAX : share;
	ret = bpq_set_config(q->fd, &cfg);
	if (ret < 0) {
		say("queue %s: rate %llu: %s", q->aq->name,
		    (unsigned long long)share, strerror(-ret));
		return;
	}
	q->limited = 1;
	q->share = share;
}

static struct lq *budget_queue(void)
{
	int i;

	if (d.cl->policy != CLUSTER_BUDGET)
		return NULL;
	for (i = 0; i < d.nq; i++)
		if (!strcmp(d.q[i].aq->name, d.cl->queue))
			return &d.q[i];
	return NULL;
}

/*
 * The system level: the kernel's memory pressure (PSI) trigger, "some"
 * stall of memory_pct of memory_window. While it fires the file's queues
 * are held (+system); two windows without a firing let them go.
 */
static void psi_open(void)
{
	uint64_t win = d.cl->memory_window_ms * 1000;
	char trig[64];
	int fd;

	if (!d.cl->memory_pct)
		return;
	snprintf(trig, sizeof(trig), "some %llu %llu",
		 (unsigned long long)(win * d.cl->memory_pct / 100),
		 (unsigned long long)win);
	fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || write(fd, trig, strlen(trig) + 1) < 0) {
		say("/proc/pressure/memory: %s; no system level", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	d.psi_fd = fd;
}

static void set_system(int on)
{
	int i, ret;

	if (d.system_held == on)
		return;
	for (i = 0; i < d.nq; i++) {
		if (d.q[i].index < 0)
			continue;
		ret = bpq_hold(d.q[i].index, BPQ_HOLD_SYSTEM, on);
		if (ret < 0 && ret != -ENOENT)
			say("queue %s: hold %ssystem: %s", d.q[i].aq->name,
			    on ? "+" : "-", strerror(-ret));
	}
	d.system_held = on;
	say("memory pressure %s: %s", on ? "above" : "below",
	    on ? "queues held (+system)" : "queues let go (-system)");
}

static void psi_check(uint64_t now)
{
	if (d.system_held && now - d.psi_fired > 2 * d.cl->memory_window_ms)
		set_system(0);
}

/* Fail open: every hold of bpqd's cleared, every budget lifted */
static void release_all(void)
{
	int i;

	for (i = 0; i < d.nq; i++) {
		set_hold(&d.q[i], 0);
		set_share(&d.q[i], 0);
	}
	d.hold = 0;
}

/* --- Redis ------------------------------------------------------------ */

static void key(char *buf, size_t len, const char *node, const char *queue)
{
	snprintf(buf, len, "%snode:%s%s%s", d.cl->prefix, node,
		 queue ? ":" : "", queue ? queue : "");
}

static void append(int argc, ...)
{
	const char *argv[24];
	va_list ap;
	int i;

	va_start(ap, argc);
	for (i = 0; i < argc && i < 24; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	redis_append(&d.r, argc, argv);
}

/* This node's and its queues' keys, with the TTL */
static int report(void)
{
	char k[256], ttl[24], load[16], held[4], ts[24], set[192];
	char u[16], p[16], dep[24], tp[24], age[24], ww[16], dem[24], sh[24];
	struct lq *bq = budget_queue();
	int i;

	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)d.cl->ttl_ms);
	snprintf(load, sizeof(load), "%u", d.load);
	snprintf(held, sizeof(held), "%d", d.hold);
	snprintf(ts, sizeof(ts), "%llu", (unsigned long long)wall_ms());
	snprintf(set, sizeof(set), "%snodes", d.cl->prefix);
	append(3, "SADD", set, d.node);
	key(k, sizeof(k), d.node, NULL);
	append(8, "HSET", k, "load", load, "held", held, "ts", ts);
	append(3, "PEXPIRE", k, ttl);
	for (i = 0; i < d.nq; i++) {
		struct lq *q = &d.q[i];

		if (q->index < 0)
			continue;
		snprintf(u, sizeof(u), "%u", q->util);
		snprintf(p, sizeof(p), "%u", q->st.pressure);
		snprintf(dep, sizeof(dep), "%llu",
			 (unsigned long long)q->st.depth_msgs);
		snprintf(tp, sizeof(tp), "%llu",
			 (unsigned long long)q->st.throughput);
		snprintf(age, sizeof(age), "%llu",
			 (unsigned long long)q->st.head_age_us);
		snprintf(ww, sizeof(ww), "%u", q->st.writers_waiting);
		if (q == bq && q->waited)
			snprintf(dem, sizeof(dem), "more");
		else
			snprintf(dem, sizeof(dem), "%llu",
				 (unsigned long long)q->offered);
		snprintf(sh, sizeof(sh), "%llu", (unsigned long long)q->share);
		key(k, sizeof(k), d.node, q->aq->name);
		append(20, "HSET", k, "utilization", u, "pressure", p,
		       "depth", dep, "throughput", tp, "head_age_us", age,
		       "writers_waiting", ww, "demand", dem, "share", sh,
		       "held", q->held ? "1" : "0");
		append(3, "PEXPIRE", k, ttl);
	}
	return redis_flush(&d.r, NULL, 0);
}

static uint64_t field_u64(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) :
						    0;
}

/* The nodes' keys, into d.nodes; the nodes whose keys expired leave */
static int read_view(void)
{
	redisReply *members, *rep[2 * BPQD_NODES_MAX];
	char k[256], set[192];
	int i, n, nn = 0, ret;
	uint64_t wall = wall_ms();

	snprintf(set, sizeof(set), "%snodes", d.cl->prefix);
	append(2, "SMEMBERS", set);
	if (redis_flush(&d.r, &members, 0))
		return -1;
	if (members->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(members);
		snprintf(d.r.err, sizeof(d.r.err), "SMEMBERS: not a set");
		redis_close(&d.r);
		return -1;
	}
	n = members->elements < BPQD_NODES_MAX ? members->elements :
						  BPQD_NODES_MAX;
	for (i = 0; i < n; i++) {
		key(k, sizeof(k), members->element[i]->str, NULL);
		append(5, "HMGET", k, "load", "held", "ts");
		key(k, sizeof(k), members->element[i]->str,
		    d.cl->policy == CLUSTER_BUDGET ? d.cl->queue : "-");
		append(4, "HMGET", k, "demand", "share");
	}
	if (redis_flush(&d.r, rep, 0)) {
		freeReplyObject(members);
		return -1;
	}
	d.self = -1;
	for (i = 0; i < n; i++) {
		redisReply *nr = rep[2 * i], *qr = rep[2 * i + 1];
		struct node *node = &d.nodes[nn];
		const char *id = members->element[i]->str;

		if (nr->type != REDIS_REPLY_ARRAY || nr->elements != 3 ||
		    nr->element[0]->type != REDIS_REPLY_STRING) {
			/* its keys expired: it has left */
			if (strcmp(id, d.node)) {
				append(3, "SREM", set, id);
				say("node %s: gone (its keys expired)", id);
			}
			continue;
		}
		memset(node, 0, sizeof(*node));
		snprintf(node->id, sizeof(node->id), "%s", id);
		node->load = field_u64(nr->element[0]);
		node->held = field_u64(nr->element[1]);
		node->age_ms = wall - field_u64(nr->element[2]);
		if (node->age_ms > wall)
			node->age_ms = 0;
		if (qr->type == REDIS_REPLY_ARRAY && qr->elements == 2 &&
		    qr->element[0]->type == REDIS_REPLY_STRING) {
			node->has_queue = 1;
			node->demand = !strcmp(qr->element[0]->str, "more") ?
				DEMAND_MORE : field_u64(qr->element[0]);
			node->share = field_u64(qr->element[1]);
		}
		if (!strcmp(id, d.node))
			d.self = nn;
		nn++;
	}
	for (i = 0; i < 2 * n; i++)
		freeReplyObject(rep[i]);
	freeReplyObject(members);
	d.nn = nn;
	ret = d.r.pending ? redis_flush(&d.r, NULL, 0) : 0;
	return ret;
}

/* --- the decisions ---------------------------------------------------- */

static void decide(void)
{
	uint64_t demand[BPQD_NODES_MAX], share[BPQD_NODES_MAX];
	int idx[BPQD_NODES_MAX];
	struct lq *bq = budget_queue();
	int i, n = 0, hold, self = -1;

	if (d.self < 0)
		return;		/* our own report is not in the view yet */
	if (d.cl->policy == CLUSTER_LEAST_LOADED) {
		unsigned int least = least_load(d.nodes, d.nn);

		hold = least_loaded_holds(d.nodes, d.nn, d.self,
					  d.cl->margin_pct);
		if (hold != d.hold || d.verbose)
			say("least_loaded: load %u%%, the least %u%% of %d nodes: %s",
			    d.load, least, d.nn,
			    hold ? "hold +cluster" : "take work");
		d.hold = hold;
		for (i = 0; i < d.nq; i++)
			set_hold(&d.q[i], hold);
	}
	if (bq && bq->index >= 0) {
		for (i = 0; i < d.nn; i++) {
			if (!d.nodes[i].has_queue)
				continue;
			if (i == d.self)
				self = n;
			idx[n] = i;
			demand[n++] = d.nodes[i].demand;
		}
		if (self < 0)
			return;
		budget_split(demand, n, d.cl->budget, share);
		for (i = 0; i < n; i++)
			d.nodes[idx[i]].share = share[i];
		/* said when it moves by a tenth or more */
		if (d.verbose || share[self] * 10 < bq->share * 9 ||
		    share[self] * 10 > bq->share * 11)
			say("budget %s: %llu msgs/s of %llu among %d nodes",
			    bq->aq->name, (unsigned long long)share[self],
			    (unsigned long long)d.cl->budget, n);
		set_share(bq, share[self]);
	}
}

static void on_message(const char *text, void *arg)
{
	(void)arg;
	/* another node's change: look again at once */
	if (strcmp(text, d.node))
		d.eval_at = now_ms();
}

static void unreachable(uint64_t now)
{
	if (d.up || !d.down_since) {
		say("redis %s unreachable: %s; keeping the last decisions for %llu ms",
		    d.cl->address, d.r.err,
		    (unsigned long long)d.cl->grace_ms);
		d.down_since = now;
		d.backoff = 250;
	} else {
		d.backoff = d.backoff * 2 > 10000 ? 10000 : d.backoff * 2;
	}
	d.up = 0;
	d.next_try = now + d.backoff;
}

static void cycle(uint64_t now, int full)
{
	char msg[80];
	int i;

	for (i = 0; i < d.nq; i++)
		lq_refresh(&d.q[i], now);
	psi_check(now);
	d.load = 0;
	for (i = 0; i < d.nq; i++)
		if (d.q[i].index >= 0 && d.q[i].util > d.load)
			d.load = d.q[i].util;
	if (!d.up) {
		if (now < d.next_try)
			goto failing;
		if (redis_open(&d.r, d.channel, d.cl->report_ms < 2000 ?
					 (int)d.cl->report_ms : 2000)) {
			unreachable(now);
			goto failing;
		}
		if (d.ever_up)
			say("redis %s reachable again after %llu ms",
			    d.cl->address,
			    (unsigned long long)(now - d.down_since));
		else
			say("redis %s: joined as node %s (%s, report every %llu ms, ttl %llu ms)",
			    d.cl->address, d.node,
			    d.cl->policy == CLUSTER_LEAST_LOADED ?
			    "least_loaded" : d.cl->policy == CLUSTER_BUDGET ?
			    "budget" : "report only",
			    (unsigned long long)d.cl->report_ms,
			    (unsigned long long)d.cl->ttl_ms);
		d.up = d.ever_up = 1;
		d.down_since = 0;
		d.failed_open = 0;
		full = 1;
	}
	if ((full && report()) || read_view()) {
		unreachable(now);
		goto failing;
	}
	decide();
	if (d.hold != d.published_hold || d.load / 10 != d.published_load / 10) {
		snprintf(msg, sizeof(msg), "%s", d.node);
		append(3, "PUBLISH", d.channel, msg);
		if (redis_flush(&d.r, NULL, 0)) {
			unreachable(now);
			goto failing;
		}
		d.published_hold = d.hold;
		d.published_load = d.load;
	}
	if (full && redis_sub_ping(&d.r))
		unreachable(now);
	return;
failing:
	if (!d.failed_open && d.down_since &&
	    now - d.down_since >= d.cl->grace_ms) {
		release_all();
		d.failed_open = 1;
		d.nn = 0;
		say("redis unreachable for %llu ms: cluster holds cleared, budgets lifted (failing open); retrying",
		    (unsigned long long)(now - d.down_since));
	}
}

/* --- what others read: the status file and the textfile ---------------- */

static void print_status(FILE *f, const void *arg)
{
	uint64_t now = now_ms();
	int i;

	(void)arg;
	fprintf(f, "{\"node\": ");
	json_string(f, d.node);
	fprintf(f, ", \"redis\": ");
	json_string(f, d.cl->address);
	fprintf(f, ", \"reachable\": %s, \"unreachable_ms\": %llu, \"failed_open\": %s, \"policy\": \"%s\", \"load\": %u, \"hold\": %s, \"redis_ops_per_s\": %.1f",
		d.up ? "true" : "false",
		(unsigned long long)(d.up ? 0 : now - d.down_since),
		d.failed_open ? "true" : "false",
		d.cl->policy == CLUSTER_LEAST_LOADED ? "least_loaded" :
		d.cl->policy == CLUSTER_BUDGET ? "budget" : "none",
		d.load, d.hold ? "true" : "false",
		now > d.started ? (d.r.ops - d.ops_at_start) * 1000.0 /
				  (now - d.started) : 0.0);
	if (d.cl->policy == CLUSTER_BUDGET) {
		fprintf(f, ", \"budget\": {\"queue\": ");
		json_string(f, d.cl->queue);
		fprintf(f, ", \"total\": %llu}", (unsigned long long)d.cl->budget);
	}
	fprintf(f, ", \"system_held\": %s", d.system_held ? "true" : "false");
	fprintf(f, ", \"nodes\": [");
	for (i = 0; i < d.nn; i++) {
		const struct node *n = &d.nodes[i];

		fprintf(f, "%s{\"id\": ", i ? ", " : "");
		json_string(f, n->id);
		fprintf(f, ", \"load\": %u, \"held\": %s, \"age_ms\": %llu",
			n->load, n->held ? "true" : "false",
			(unsigned long long)n->age_ms);
		if (n->has_queue) {
			if (n->demand == DEMAND_MORE)
				fprintf(f, ", \"demand\": \"more\"");
			else
				fprintf(f, ", \"demand\": %llu",
					(unsigned long long)n->demand);
			fprintf(f, ", \"share\": %llu",
				(unsigned long long)n->share);
		}
		fputc('}', f);
	}
	fprintf(f, "], \"queues\": [");
	for (i = 0; i < d.nq; i++) {
		const struct lq *q = &d.q[i];

		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		json_string(f, q->aq->name);
		fprintf(f, ", \"present\": %s, \"utilization\": %u, \"held\": %s, \"rate_limited\": %s, \"share\": %llu}",
			q->index >= 0 ? "true" : "false", q->util,
			q->held ? "true" : "false",
			q->limited ? "true" : "false",
			(unsigned long long)q->share);
	}
	fprintf(f, "]}\n");
}

/* The same for people: bpqctl cluster prints it */
static void print_status_text(FILE *f, const void *arg)
{
	uint64_t now = now_ms();
	int i;

	(void)arg;
	fprintf(f, "node %s, redis %s: %s", d.node, d.cl->address,
		d.up ? "reachable" : "unreachable");
	if (!d.up && d.down_since)
		fprintf(f, " for %.1f s%s",
			(now - d.down_since) / 1000.0,
			d.failed_open ? ", failed open" : "");
	fprintf(f, "\npolicy %s",
		d.cl->policy == CLUSTER_LEAST_LOADED ? "least_loaded" :
		d.cl->policy == CLUSTER_BUDGET ? "budget" : "none");
	if (d.cl->policy == CLUSTER_LEAST_LOADED)
		fprintf(f, " (margin %u%%)", d.cl->margin_pct);
	if (d.cl->policy == CLUSTER_BUDGET)
		fprintf(f, " (%llu msgs/s for %s)",
			(unsigned long long)d.cl->budget, d.cl->queue);
	fprintf(f, ", load %u%%, %s%s\n\n", d.load,
		d.hold ? "holding its queues (+cluster)" : "taking work",
		d.system_held ? "; memory pressure: held (+system)" : "");
	fprintf(f, "%-16s %5s %-5s %8s %8s %8s\n", "NODE", "LOAD", "HELD",
		"AGE", "DEMAND", "SHARE");
	for (i = 0; i < d.nn; i++) {
		const struct node *n = &d.nodes[i];
		char dem[24] = "-", sh[24] = "-";

		if (n->has_queue) {
			if (n->demand == DEMAND_MORE)
				strcpy(dem, "more");
			else
				snprintf(dem, sizeof(dem), "%llu",
					 (unsigned long long)n->demand);
			snprintf(sh, sizeof(sh), "%llu",
				 (unsigned long long)n->share);
		}
		fprintf(f, "%-16s %4u%% %-5s %7.1fs %8s %8s\n", n->id, n->load,
			n->held ? "yes" : "no", n->age_ms / 1000.0, dem, sh);
	}
	fprintf(f, "\n%-16s %5s %-5s %10s\n", "QUEUE", "UTIL", "HELD", "RATE");
	for (i = 0; i < d.nq; i++) {
		const struct lq *q = &d.q[i];
		char rate[24] = "-";

		if (q->limited)
			snprintf(rate, sizeof(rate), "%llu/s",
				 (unsigned long long)q->share);
		if (q->index < 0)
			fprintf(f, "%-16s (not on this machine)\n", q->aq->name);
		else
			fprintf(f, "%-16s %4u%% %-5s %10s\n", q->aq->name,
				q->util, q->held ? "yes" : "no", rate);
	}
}

static void print_textfile(FILE *f, const void *arg)
{
	struct queue_snap *s;
	int i, n, a;

	(void)arg;
	if (!access(BPQ_SYSFS_CLASS, F_OK) &&
	    load_all("bpqd", &s, &n) == EXIT_OK) {
		print_prometheus(f, s, n);
		free(s);
	}
	fprintf(f, "# HELP bpqd_redis_up Whether bpqd reaches Redis.\n# TYPE bpqd_redis_up gauge\nbpqd_redis_up %d\n",
		d.up);
	fprintf(f, "# HELP bpqd_cluster_hold Whether bpqd holds this node's queues (+cluster).\n# TYPE bpqd_cluster_hold gauge\nbpqd_cluster_hold %d\n",
		d.hold);
	fprintf(f, "# HELP bpqd_cluster_nodes Nodes in the cluster's view.\n# TYPE bpqd_cluster_nodes gauge\nbpqd_cluster_nodes %d\n",
		d.nn);
	fprintf(f, "# HELP bpqd_redis_ops_total Redis commands sent.\n# TYPE bpqd_redis_ops_total counter\nbpqd_redis_ops_total %llu\n",
		(unsigned long long)d.r.ops);
	fprintf(f, "# HELP bpqd_alerts_total Alert thresholds crossed (monitoring).\n# TYPE bpqd_alerts_total counter\n");
	for (i = 0; i < d.nq; i++)
		for (a = 0; a < NR_ALERTS; a++)
			if (d.q[i].trig_fd[a] >= 0 || d.q[i].fired[a])
				fprintf(f, "bpqd_alerts_total{queue=\"%s\",alert=\"%s\"} %llu\n",
					d.q[i].aq->name, alert_triggers[a].name,
					(unsigned long long)d.q[i].fired[a]);
}

/* FILE.json's text twin: FILE.txt (else FILE.txt beside FILE) */
static void status_txt_path(const char *json, char *buf, size_t len)
{
	size_t n = strlen(json);

	if (n > 5 && !strcmp(json + n - 5, ".json"))
		snprintf(buf, len, "%.*s.txt", (int)(n - 5), json);
	else
		snprintf(buf, len, "%s.txt", json);
}

/* The status file's directory, made if missing; without it, no file */
static void status_dir(void)
{
	char dir[4096], *slash;

	if (!d.status || !*d.status)
		return;
	snprintf(dir, sizeof(dir), "%s", d.status);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir) {
		status_txt_path(d.status, d.status_txt, sizeof(d.status_txt));
		return;
	}
	*slash = '\0';
	if (mkdir(dir, 0755) && errno != EEXIST) {
		say("%s: %s; no status file (bpqctl cluster)", dir,
		    strerror(errno));
		return;
	}
	status_txt_path(d.status, d.status_txt, sizeof(d.status_txt));
}

static void write_files(void)
{
	char path[4096];

	if (d.status_txt[0]) {
		replace_file("bpqd", d.status, print_status, NULL);
		replace_file("bpqd", d.status_txt, print_status_text, NULL);
	}
	if (d.textfile) {
		snprintf(path, sizeof(path), "%s/bpq.prom", d.textfile);
		replace_file("bpqd", path, print_textfile, NULL);
	}
}

/* --- the loop ------------------------------------------------------------ */

static void triggers_fired(struct pollfd *pfd, int n, int *map)
{
	int i, q, a;

	for (i = 0; i < n; i++) {
		if (!(pfd[i].revents & POLLPRI))
			continue;
		q = map[i] / NR_ALERTS;
		a = map[i] % NR_ALERTS;
		d.q[q].fired[a]++;
		say("alert: queue %s: %s crossed %llu", d.q[q].aq->name,
		    alert_triggers[a].name,
		    (unsigned long long)d.q[q].aq->threshold[a]);
	}
}

static int run(void)
{
	struct pollfd pfd[2 + 64];
	int map[64], n, i, a, base, psi, timeout;
	uint64_t now, next;

	d.started = now_ms();
	d.next_report = d.started;
	while (!d.stop) {
		now = now_ms();
		if (now >= d.next_report) {
			cycle(now, 1);
			d.next_report = now + d.cl->report_ms;
			d.eval_at = 0;
			write_files();
			if (d.once)
				break;
		} else if (d.eval_at && now >= d.eval_at && d.up) {
			d.eval_at = 0;
			cycle(now, 0);
			write_files();
		}
		base = n = 0;
		if (redis_sub_fd(&d.r) >= 0) {
			pfd[n].fd = redis_sub_fd(&d.r);
			pfd[n++].events = POLLIN;
			base = 1;
		}
		psi = -1;
		if (d.psi_fd >= 0) {
			psi = n;
			pfd[n].fd = d.psi_fd;
			pfd[n++].events = POLLPRI;
			base++;
		}
		for (i = 0; i < d.nq; i++)
			for (a = 0; a < NR_ALERTS && n - base < 64; a++)
				if (d.q[i].trig_fd[a] >= 0) {
					map[n - base] = i * NR_ALERTS + a;
					pfd[n].fd = d.q[i].trig_fd[a];
					pfd[n++].events = POLLPRI;
				}
		next = d.eval_at && d.eval_at < d.next_report ? d.eval_at :
							       d.next_report;
		now = now_ms();
		timeout = next > now ? (int)(next - now) : 0;
		if (poll(pfd, n, timeout) < 0)
			continue;	/* a signal */
		if (redis_sub_fd(&d.r) >= 0 && pfd[0].revents &&
		    redis_sub_read(&d.r, on_message, NULL) < 0)
			unreachable(now_ms());
		if (psi >= 0 && pfd[psi].revents & POLLPRI) {
			d.psi_fired = now_ms();
			set_system(1);
		}
		triggers_fired(pfd + base, n - base, map);
	}
	return 0;
}

static int check(void)
{
	const struct apply_cluster *c = d.cl;
	int i;

	printf("node %s, redis %s, keys %snode:%s..., channel %s\n", d.node,
	       c->address, c->prefix, d.node, d.channel);
	printf("report every %llu ms, ttl %llu ms, grace %llu ms\n",
	       (unsigned long long)c->report_ms, (unsigned long long)c->ttl_ms,
	       (unsigned long long)c->grace_ms);
	if (c->policy == CLUSTER_LEAST_LOADED)
		printf("policy least_loaded, margin %u%%\n", c->margin_pct);
	else if (c->policy == CLUSTER_BUDGET)
		printf("policy budget: %llu msgs/s for queue %s\n",
		       (unsigned long long)c->budget, c->queue);
	else
		printf("no policy: report only\n");
	if (c->memory_pct)
		printf("memory pressure: +system while some %u%% of %llu ms\n",
		       c->memory_pct, (unsigned long long)c->memory_window_ms);
	for (i = 0; i < d.nq; i++)
		printf("queue %s%s\n", d.q[i].aq->name,
		       d.q[i].aq->alerts ? " (alerts as triggers)" : "");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "textfile", required_argument, NULL, 't' },
		{ "status", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'k' },
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = "/etc/bpq/bpq.yaml", *node = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int opt, i, a, only_check = 0;

	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 't':
			d.textfile = optarg;
			break;
		case 's':
			d.status = optarg;
			break;
		case 'k':
			only_check = 1;
			break;
		case 'o':
			d.once = 1;
			break;
		case 'v':
			d.verbose = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("bpqd %s\n", BPQ_VERSION);
			return 0;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (apply_load("bpqd", file, &d.af))
		return EXIT_USAGE;
	d.cl = &d.af.cluster;
	if (!d.cl->line) {
		err_msg("%s: no cluster section", file);
		return EXIT_USAGE;
	}
	if (node)
		snprintf(d.node, sizeof(d.node), "%s", node);
	else if (d.cl->node_id[0])
		snprintf(d.node, sizeof(d.node), "%s", d.cl->node_id);
	else if (gethostname(d.node, sizeof(d.node) - 1))
		snprintf(d.node, sizeof(d.node), "node");
	if (!d.node[0] || strpbrk(d.node, " :\t\n")) {
		err_msg("bad node name '%s'", d.node);
		return EXIT_USAGE;
	}
	snprintf(d.channel, sizeof(d.channel), "%sevents", d.cl->prefix);
	d.r.address = d.cl->address;
	d.r.channel_address = d.cl->channel_address[0] ?
			      d.cl->channel_address : d.cl->address;
	d.nq = d.af.nr;
	d.q = calloc(d.nq ? d.nq : 1, sizeof(*d.q));
	if (!d.q)
		return EXIT_FAIL;
	for (i = 0; i < d.nq; i++) {
		d.q[i].aq = &d.af.queues[i];
		d.q[i].fd = d.q[i].index = -1;
		for (a = 0; a < NR_ALERTS; a++)
			d.q[i].trig_fd[a] = -1;
	}
	if (only_check)
		return check();
	status_dir();

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	psi_open();
	run();
	set_system(0);

	/* leaving: our holds and budgets go, and so do our keys */
	release_all();
	if (d.up) {
		char k[256], set[192];

		snprintf(set, sizeof(set), "%snodes", d.cl->prefix);
		append(3, "SREM", set, d.node);
		key(k, sizeof(k), d.node, NULL);
		append(2, "DEL", k);
		for (i = 0; i < d.nq; i++) {
			key(k, sizeof(k), d.node, d.q[i].aq->name);
			append(2, "DEL", k);
		}
		append(3, "PUBLISH", d.channel, d.node);
		redis_flush(&d.r, NULL, 1);
	}
	redis_close(&d.r);
	/* no bpqd, no status: bpqctl cluster says so */
	if (d.status_txt[0]) {
		unlink(d.status);
		unlink(d.status_txt);
		d.status_txt[0] = '\0';
	}
	d.up = 0;
	write_files();		/* the textfile's last word */
	for (i = 0; i < d.nq; i++)
		lq_close(&d.q[i]);
	say("stopped");
	apply_free(&d.af);
	free(d.q);
	return 0;
}
