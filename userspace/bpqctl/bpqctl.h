/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BPQ_BPQCTL_H
#define _BPQ_BPQCTL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>

#include <bpq.h>

/* BPQ_VERSION: the top-level VERSION file, passed by the Makefile */
#define BPQCTL_VERSION	BPQ_VERSION

/* Exit statuses, as bpqctl(8) gives them */
#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

/*
 * bpqctl reads and writes no messages: it opens queues for ioctls only
 * (access mode 3, see open(2)), so that its files count as neither readers
 * nor writers and closing them never hangs a stream up (hangup). The kernel
 * lets such a file do what either side may. That takes read and write
 * permission: where the user may only read the device, queue_open() falls
 * back to O_RDONLY for O_QUERY (reading state, granting credits), not for
 * O_CONTROL (settings, flush, reset: the writers' side), which then fails
 * with EACCES.
 */
#define O_QUERY		(O_ACCMODE | O_NONBLOCK)
#define O_CONTROL	(O_ACCMODE | O_NONBLOCK | O_CLOEXEC)

extern const char *prog;

/* Subcommands: argv[0] is the subcommand's name. */
int list_main(int argc, char **argv);
int show_main(int argc, char **argv);
int set_main(int argc, char **argv);
int create_main(int argc, char **argv);
int destroy_main(int argc, char **argv);
int grant_main(int argc, char **argv);
int alert_main(int argc, char **argv);
int flush_main(int argc, char **argv);
int stats_main(int argc, char **argv);
int watch_main(int argc, char **argv);
int reset_main(int argc, char **argv);
int apply_main(int argc, char **argv);
int shutdown_main(int argc, char **argv);
int hold_main(int argc, char **argv);
int link_main(int argc, char **argv);
int unlink_main(int argc, char **argv);
int group_main(int argc, char **argv);
int cluster_main(int argc, char **argv);
void print_group_prometheus(FILE *f);
int alerts_main(int argc, char **argv);

/* common.c */
void __attribute__((format(printf, 1, 2))) err_msg(const char *fmt, ...);
int usage_fail(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int is_help(const char *arg);
int wants_help(int argc, char **argv);
int print_usage(const char *usage);
int read_text(const char *path, char *buf, size_t len);
int queue_open(const char *q, int flags);
int open_queue(const char *cmd, const char *q, int flags, int *index);
const char *errno_name(int err, char *buf, size_t len);
int errno_parse(const char *s);
int replace_file(const char *cmd, const char *path,
		 void (*print)(FILE *f, const void *arg), const void *arg);

/* group.c: a group's sysfs files (apply uses them too) */
int group_read(const char *name, const char *attr, char *buf, size_t len);
int group_exists(const char *name);
int group_configure(const char *name, unsigned int capacity,
		    unsigned int high, unsigned int low, const char **attr);

/* One queue as bpqctl shows it: a config and a stats snapshot. */
struct queue_snap {
	unsigned int index;
	char name[BPQ_NAME_MAX + 1];
	struct bpq_config cfg;
	struct bpq_stats st;
	/* show only: the linked queues' names, as sysfs has them, or NULL */
	char *upstream, *downstream;
	/* show only: its group's name, "" for none, or NULL (not shown) */
	char *group;
};
int snap_load_fd(int fd, unsigned int index, struct queue_snap *s);
int snap_load(unsigned int index, struct queue_snap *s);
int load_all(const char *cmd, struct queue_snap **out, int *nr);

/*
 * settings.c: the sysfs setting names and their place in bpq_config. A
 * setting with names (strategy, hangup, ack_mode) is read and written by
 * name only; auto_credit takes and shows sysfs's 0, 1 or "ack" (2 too),
 * and is a number in JSON (json_number).
 */
struct setting {
	const char *name;
	size_t offset;
	unsigned int width;	/* 4 or 8 bytes */
	const char *(*to_name)(unsigned int value);
	int (*from_name)(const char *name);
	int json_number;
};
extern const struct setting settings[];
extern const unsigned int nr_settings;

/* A partial config: the settings named in have (bit = index in settings). */
struct config_change {
	uint32_t have;
	struct bpq_config val;
};
int setting_find(const char *name);
int setting_parse(int idx, const char *text, struct bpq_config *cfg);
uint64_t setting_get(int idx, const struct bpq_config *cfg);
const char *setting_name(int idx, const struct bpq_config *cfg);
void setting_put(int idx, struct bpq_config *cfg, uint64_t v);
void change_set(struct config_change *c, int idx, uint64_t v);
void change_apply(const struct config_change *c, struct bpq_config *cfg);
int parse_u64(const char *s, uint64_t max, uint64_t *out);
int parse_changes(const char *cmd, const char *usage, int argc, char **argv,
		  struct config_change *c, char *desc, size_t desclen);
int set_changes(int fd, const struct config_change *c);

/* format.c: output of list, show and stats. */
const char *snap_strategy(const struct queue_snap *s);
const char *snap_stream(const struct queue_snap *s, char *buf, size_t len);
void print_list(FILE *f, const struct queue_snap *s, int n, int json);
void print_show(FILE *f, const struct queue_snap *s, int json);
void print_stats(FILE *f, const struct queue_snap *s, int json);
void print_prometheus(FILE *f, const struct queue_snap *s, int n);
void json_string(FILE *f, const char *s);
void json_names(FILE *f, const char *key, const char *list);

/*
 * config.c: the YAML file of apply. The thresholds of monitoring's
 * alert_thresholds, each in the unit given.
 */
enum apply_alert {
	ALERT_UTILIZATION,	/* percent, 1 ... 100 */
	ALERT_DEPTH,		/* messages */
	ALERT_DROP_RATE,	/* parts per million of the messages offered */
	ALERT_BLOCKED,		/* ms a minute with a writer blocked */
	ALERT_HEAD_AGE,		/* ms the oldest message has waited */
	NR_ALERTS
};

struct apply_queue {
	char name[BPQ_NAME_MAX];
	int line;
	struct config_change change;
	uint64_t initial_credits;
	int no_grant;		/* initial_credits are not granted (see note) */
	uint64_t credit_batch;	/* credit_batch_size, advisory; 0: none */
	/* the queues this one is linked to (bpq(4), Links), and where */
	char downstream[BPQ_LINKS_MAX][BPQ_NAME_MAX];
	int nr_down;
	int down_line;
	/* monitoring: checked, kept for "alerts" (and bpqd) */
	uint64_t metrics_interval_ms;	/* 0: not given */
	unsigned int alerts;		/* 1 << enum apply_alert: given */
	uint64_t threshold[NR_ALERTS];
	/* said on standard error before anything is applied, if not "" */
	int note_line;
	char note[512];
	/* its group: key, or "" */
	char group[BPQ_NAME_MAX];
	int group_line;
};

/* A link to make: every downstream key's, then the links section's */
struct apply_link {
	char up[BPQ_NAME_MAX];
	char down[BPQ_NAME_MAX];
	int line;
};

/* A group of the groups section, parents before the groups within */
struct apply_group {
	char name[BPQ_NAME_MAX];
	char parent[BPQ_NAME_MAX];	/* "" for none */
	int line;
	unsigned int capacity, high, low;	/* percent; defaults filled */
};

#define GROUP_HIGH_DEFAULT	80
#define GROUP_LOW_DEFAULT	60

/* A queue to put in a group: members' lists, then the group keys */
struct apply_member {
	char queue[BPQ_NAME_MAX];
	char group[BPQ_NAME_MAX];
	int line;
};

/*
 * The cluster section, for bpqd (bpqd(8)); defaults filled in.
 * policy: 0 (report only), CLUSTER_LEAST_LOADED or CLUSTER_BUDGET.
 */
enum { CLUSTER_LEAST_LOADED = 1, CLUSTER_BUDGET };

struct apply_cluster {
	int line;			/* 0: no cluster section */
	char node_id[64];		/* "": the host's name */
	char address[256];		/* host:port, [v6]:port or unix:/path */
	char channel_address[256];	/* the subscriber's; "": address */
	char prefix[128];
	uint64_t ttl_ms, report_ms, grace_ms;
	int policy;
	unsigned int margin_pct;	/* least_loaded */
	uint64_t budget;		/* budget: messages a second */
	char queue[BPQ_NAME_MAX];	/* budget: the queue it is for */
	/* the system level: memory stall share (percent) within a window */
	unsigned int memory_pct;	/* 0: not watched */
	uint64_t memory_window_ms;
};

#define CLUSTER_PREFIX_DEFAULT	"bpq:"
#define CLUSTER_TTL_DEFAULT	15000
#define CLUSTER_REPORT_DEFAULT	1000
#define CLUSTER_MARGIN_DEFAULT	10

struct apply_file {
	struct apply_cluster cluster;
	struct apply_queue *queues;
	int nr;
	struct apply_link *links;
	int nr_links;
	struct apply_group *groups;
	int nr_groups;
	struct apply_member *members;
	int nr_members;
};
int apply_parse(const char *file, const char *text, size_t len,
		struct apply_file *out, char *err, size_t errlen);
int apply_load(const char *cmd, const char *file, struct apply_file *af);
void apply_notes(const char *file, const struct apply_file *af);
void apply_print(FILE *f, const struct apply_file *af);
void apply_free(struct apply_file *af);

/* alerts.c: Prometheus alerting rules from the thresholds of apply's file */
void print_alert_rules(FILE *f, const struct apply_file *af);

#endif /* _BPQ_BPQCTL_H */
