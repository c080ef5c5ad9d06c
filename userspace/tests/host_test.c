// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of libbpq and bpqctl that need no module: strategy, stream,
 * hangup, ack mode, window state and errno names, key=value parsing, the YAML file of apply (with its error lines), the
 * JSON and Prometheus output of fake snapshots, and the receive ring's
 * reader on a ring laid out in memory as the kernel would. Prints TAP;
 * exits 1 if any test failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

const char *prog = "bpqctl";

static int nr_tests, nr_failed;

static void ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	nr_tests++;
	if (!cond)
		nr_failed++;
	printf("%sok %d - ", cond ? "" : "not ", nr_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void test_strategies(void)
{
	static const char *const names[] = {
		"block", "drop-newest", "drop-oldest", "credit", "adaptive",
		"window",
	};
	unsigned int i;

	for (i = 0; i < 6; i++) {
		ok(bpq_strategy_parse(names[i]) == (int)i, "strategy parse %s",
		   names[i]);
		ok(bpq_strategy_name(i) && !strcmp(bpq_strategy_name(i), names[i]),
		   "strategy name %u", i);
	}
	ok(bpq_strategy_parse("Block") == -EINVAL, "strategy parse is exact");
	ok(bpq_strategy_parse("") == -EINVAL, "strategy parse empty");
	ok(bpq_strategy_parse(NULL) == -EINVAL, "strategy parse NULL");
	ok(bpq_strategy_name(6) == NULL, "strategy name out of range");
	ok(BPQ_STRATEGY_WINDOW == 5, "window is strategy 5");
}

static void test_window_names(void)
{
	static const char *const modes[] = { "ack", "delivery" };
	static const char *const states[] = {
		"slow-start", "avoidance", "recovery",
	};
	unsigned int i;

	for (i = 0; i < 2; i++) {
		ok(bpq_ack_mode_parse(modes[i]) == (int)i, "ack mode parse %s",
		   modes[i]);
		ok(bpq_ack_mode_name(i) && !strcmp(bpq_ack_mode_name(i), modes[i]),
		   "ack mode name %u", i);
	}
	ok(BPQ_ACK_MODE_ACK == 0 && BPQ_ACK_MODE_DELIVERY == 1,
	   "ack mode values");
	ok(bpq_ack_mode_name(2) == NULL, "ack mode name out of range");
	ok(bpq_ack_mode_parse("Ack") == -EINVAL, "ack mode parse is exact");
	ok(bpq_ack_mode_parse("0") == -EINVAL, "ack mode parse takes no number");
	ok(bpq_ack_mode_parse("") == -EINVAL && bpq_ack_mode_parse(NULL) ==
	   -EINVAL, "ack mode parse empty, NULL");
	for (i = 0; i < 3; i++)
		ok(bpq_window_state_name(i) &&
		   !strcmp(bpq_window_state_name(i), states[i]),
		   "window state name %u: %s", i, states[i]);
	ok(BPQ_WINDOW_SLOW_START == 0 && BPQ_WINDOW_RECOVERY == 2,
	   "window state values");
	ok(bpq_window_state_name(3) == NULL, "window state name out of range");
	ok(!strcmp(bpq_hold_name(BPQ_HOLD_ADMIN), "admin") &&
	   !strcmp(bpq_hold_name(BPQ_HOLD_GROUP), "group") &&
	   bpq_hold_name(BPQ_HOLD_ADMIN | BPQ_HOLD_LINK) == NULL &&
	   bpq_hold_name(0) == NULL && bpq_hold_name(1U << 5) == NULL,
	   "hold names: one bit each");
	ok(bpq_hold_parse("cluster") == BPQ_HOLD_CLUSTER &&
	   bpq_hold_parse("link") == BPQ_HOLD_LINK &&
	   bpq_hold_parse("+admin") == -EINVAL &&
	   bpq_hold_parse("") == -EINVAL && bpq_hold_parse(NULL) == -EINVAL,
	   "hold parse: names to bits");
	ok(bpq_hold(0, BPQ_HOLD_ADMIN | BPQ_HOLD_SYSTEM, 1) == -EINVAL,
	   "bpq_hold: one reason a call");
}

static void test_stream_names(void)
{
	static const char *const streams[] = {
		"open", "completed", "failed", "cancelled",
	};
	static const char *const hangups[] = {
		"none", "writers", "readers", "both",
	};
	char buf[16];
	unsigned int i;

	for (i = 0; i < 4; i++) {
		ok(bpq_stream_name(i) && !strcmp(bpq_stream_name(i), streams[i]),
		   "stream name %u: %s", i, streams[i]);
		ok(bpq_hangup_parse(hangups[i]) == (int)i, "hangup parse %s",
		   hangups[i]);
		ok(bpq_hangup_name(i) && !strcmp(bpq_hangup_name(i), hangups[i]),
		   "hangup name %u", i);
	}
	ok(BPQ_STREAM_FAILED == 2 && BPQ_HANGUP_BOTH ==
	   (BPQ_HANGUP_WRITERS | BPQ_HANGUP_READERS), "enum values");
	ok(bpq_stream_name(4) == NULL, "stream name out of range");
	ok(bpq_hangup_name(4) == NULL, "hangup name out of range");
	ok(bpq_hangup_parse("Writers") == -EINVAL, "hangup parse is exact");
	ok(bpq_hangup_parse("1") == -EINVAL, "hangup parse takes no number");
	ok(bpq_hangup_parse("") == -EINVAL, "hangup parse empty");
	ok(bpq_hangup_parse(NULL) == -EINVAL, "hangup parse NULL");

	ok(errno_parse("EIO") == EIO && errno_parse("eio") == EIO,
	   "errno parse EIO, any case");
	ok(errno_parse("ECONNRESET") == ECONNRESET, "errno parse ECONNRESET");
	ok(errno_parse("5") == 5 && errno_parse("133") == 133,
	   "errno parse numbers");
	ok(errno_parse("EWOULDBLOCK") == EAGAIN &&
	   errno_parse("ENOTSUP") == EOPNOTSUPP, "errno parse aliases");
	ok(errno_parse("EFOO") == -EINVAL && errno_parse("") == -EINVAL &&
	   errno_parse("-5") == -EINVAL && errno_parse("5x") == -EINVAL &&
	   errno_parse(NULL) == -EINVAL, "errno parse refuses junk");
	ok(!strcmp(errno_name(EIO, buf, sizeof(buf)), "EIO") &&
	   !strcmp(errno_name(EPIPE, buf, sizeof(buf)), "EPIPE"),
	   "errno name EIO, EPIPE");
	ok(!strcmp(errno_name(4000, buf, sizeof(buf)), "4000"),
	   "errno name of an unknown number is the number");
}

static void test_settings(void)
{
	static const char *const sysfs[] = {
		"strategy", "capacity_msgs", "capacity_bytes", "max_msg_size",
		"high_watermark", "low_watermark", "write_timeout_ms",
		"auto_credit", "target_latency_us", "min_rate", "max_rate",
		"adjust_interval_ms", "hangup", "ack_mode", "initial_cwnd",
		"min_cwnd", "max_cwnd", "initial_ssthresh", "ack_timeout_ms",
		"read_mode",
	};
	char *win[] = { "strategy=window", "ack_mode=delivery",
			"initial_cwnd=20", "min_cwnd=2", "max_cwnd=1000",
			"initial_ssthresh=64", "ack_timeout_ms=500" };
	char *badmode[] = { "ack_mode=1" };
	char *acred[] = { "auto_credit=ack" };
	char *acred2[] = { "auto_credit=2" };
	char *acred1[] = { "auto_credit=1" };
	char *badacred[] = { "auto_credit=3" };
	char *maxc[] = { "max_cwnd=5" };
	char *minc[] = { "min_cwnd=50" };
	char *both[] = { "max_cwnd=5", "initial_cwnd=7" };
	char *hang[] = { "hangup=writers", "capacity_msgs=3" };
	char *badhang[] = { "hangup=all" };
	char *numhang[] = { "hangup=1" };
	char *rmode[] = { "read_mode=stream" };
	char *badrmode[] = { "read_mode=bytes" };
	char *good[] = { "capacity_msgs=10", "strategy=credit",
			 "capacity_bytes=8589934592", "high_watermark=80" };
	char *unknown[] = { "capacity_msgs=10", "size=5" };
	char *bad[] = { "capacity_msgs=-1" };
	char *bad32[] = { "min_rate=4294967296" };
	char *noeq[] = { "capacity_msgs" };
	struct config_change c;
	struct bpq_config cfg;
	char desc[256];
	unsigned int i;

	ok(nr_settings == 20, "20 settings");
	for (i = 0; i < 20; i++)
		ok(setting_find(sysfs[i]) >= 0, "setting %s known", sysfs[i]);
	ok(setting_find("name") < 0, "name is not a setting");
	ok(setting_find("stream") < 0, "stream is not a setting");

	ok(parse_changes("set", "u", 2, hang, &c, desc, sizeof(desc)) == 0 &&
	   c.val.hangup == BPQ_HANGUP_WRITERS && c.val.capacity_msgs == 3 &&
	   c.have == ((1U << setting_find("hangup")) |
		      (1U << setting_find("capacity_msgs"))),
	   "set: hangup=writers parses");
	ok(parse_changes("set", "u", 1, badhang, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: hangup=all is a usage error");
	ok(parse_changes("set", "u", 1, numhang, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: hangup by number is a usage error");
	ok(parse_changes("set", "u", 1, rmode, &c, desc, sizeof(desc)) == 0 &&
	   c.val.read_mode == BPQ_READ_STREAM &&
	   c.have == 1U << setting_find("read_mode"),
	   "set: read_mode=stream parses");
	ok(parse_changes("set", "u", 1, badrmode, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: read_mode=bytes is a usage error");
	memset(&cfg, 0, sizeof(cfg));
	cfg.hangup = BPQ_HANGUP_BOTH;
	ok(!strcmp(setting_name(setting_find("hangup"), &cfg), "both") &&
	   !strcmp(setting_name(setting_find("strategy"), &cfg), "block") &&
	   setting_name(setting_find("capacity_msgs"), &cfg) == NULL,
	   "setting_name: names for strategy and hangup only");
	cfg.hangup = 9;
	ok(!strcmp(setting_name(setting_find("hangup"), &cfg), "unknown"),
	   "setting_name: unknown value");

	ok(parse_changes("set", "u", 7, win, &c, desc, sizeof(desc)) == 0 &&
	   c.val.strategy == BPQ_STRATEGY_WINDOW &&
	   c.val.ack_mode == BPQ_ACK_MODE_DELIVERY && c.val.initial_cwnd == 20 &&
	   c.val.min_cwnd == 2 && c.val.max_cwnd == 1000 &&
	   c.val.initial_ssthresh == 64 && c.val.ack_timeout_ms == 500,
	   "set: strategy=window and the window settings parse");
	ok(parse_changes("set", "u", 1, badmode, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: ack_mode by number is a usage error");
	ok(parse_changes("set", "u", 1, acred, &c, desc, sizeof(desc)) == 0 &&
	   c.val.auto_credit == BPQ_AUTO_CREDIT_ACK, "set: auto_credit=ack");
	ok(parse_changes("set", "u", 1, acred2, &c, desc, sizeof(desc)) == 0 &&
	   c.val.auto_credit == BPQ_AUTO_CREDIT_ACK, "set: auto_credit=2");
	ok(parse_changes("set", "u", 1, acred1, &c, desc, sizeof(desc)) == 0 &&
	   c.val.auto_credit == BPQ_AUTO_CREDIT_DELIVERY, "set: auto_credit=1");
	ok(parse_changes("set", "u", 1, badacred, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: auto_credit=3 is a usage error");
	memset(&cfg, 0, sizeof(cfg));
	cfg.auto_credit = BPQ_AUTO_CREDIT_ACK;
	cfg.ack_mode = BPQ_ACK_MODE_DELIVERY;
	ok(!strcmp(setting_name(setting_find("auto_credit"), &cfg), "ack") &&
	   !strcmp(setting_name(setting_find("ack_mode"), &cfg), "delivery"),
	   "setting_name: auto_credit ack, ack_mode delivery");
	cfg.auto_credit = BPQ_AUTO_CREDIT_DELIVERY;
	ok(!strcmp(setting_name(setting_find("auto_credit"), &cfg), "1"),
	   "setting_name: auto_credit 1");

	cfg.initial_cwnd = 10;
	cfg.min_cwnd = 1;
	cfg.max_cwnd = 1048576;
	parse_changes("set", "u", 1, maxc, &c, desc, sizeof(desc));
	change_apply(&c, &cfg);
	ok(cfg.max_cwnd == 5 && cfg.initial_cwnd == 5,
	   "max_cwnd=5 alone takes initial_cwnd down along");
	parse_changes("set", "u", 1, minc, &c, desc, sizeof(desc));
	change_apply(&c, &cfg);
	ok(cfg.min_cwnd == 50 && cfg.initial_cwnd == 50,
	   "min_cwnd=50 alone takes initial_cwnd up along");
	cfg.min_cwnd = 1;
	cfg.max_cwnd = 1048576;
	cfg.initial_cwnd = 10;
	parse_changes("set", "u", 2, both, &c, desc, sizeof(desc));
	change_apply(&c, &cfg);
	ok(cfg.max_cwnd == 5 && cfg.initial_cwnd == 7,
	   "initial_cwnd given is left to the kernel to judge");

	ok(parse_changes("set", "u", 4, good, &c, desc, sizeof(desc)) == 0,
	   "set: good keys parse");
	ok(c.val.capacity_msgs == 10 && c.val.strategy == BPQ_STRATEGY_CREDIT &&
	   c.val.capacity_bytes == 8589934592ULL, "set: values land");
	ok(!strcmp(desc, " capacity_msgs=10 strategy=credit "
			 "capacity_bytes=8589934592 high_watermark=80"),
	   "set: error text names the arguments");
	ok(parse_changes("set", "u", 2, unknown, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: unknown key is a usage error");
	ok(parse_changes("set", "u", 1, bad, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: negative value is a usage error");
	ok(parse_changes("set", "u", 1, bad32, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: 32-bit overflow is a usage error");
	ok(parse_changes("set", "u", 1, noeq, &c, desc, sizeof(desc)) ==
	   EXIT_USAGE, "set: missing '=' is a usage error");

	memset(&cfg, 0, sizeof(cfg));
	cfg.high_watermark = cfg.low_watermark = 100;
	cfg.capacity_msgs = 7;
	parse_changes("set", "u", 4, good, &c, desc, sizeof(desc));
	change_apply(&c, &cfg);
	ok(cfg.high_watermark == 80 && cfg.low_watermark == 80,
	   "high_watermark alone takes low_watermark along");
	ok(cfg.capacity_msgs == 10 && cfg.max_msg_size == 0,
	   "change touches only the named settings");
}

static int parse(const char *text, struct apply_file *af, char *err)
{
	return apply_parse("q.yaml", text, strlen(text), af, err, 256);
}

static void test_yaml_good(void)
{
	const char *text =
		"# queues of the shop\n"
		"queues:\n"
		"  orders:\n"
		"    size: 1000            # capacity_msgs\n"
		"    strategy: block\n"
		"    timeout: 2s\n"
		"    high_watermark: 80\n"
		"    low_watermark: 60%\n"
		"    max_msg_size: 4096\n"
		"    capacity_bytes: 1M\n"
		"  events:\n"
		"    strategy: credit\n"
		"    flow_control: { type: credit, initial_credits: 100, auto_credit: true }\n"
		"  metrics:\n"
		"    strategy: adaptive\n"
		"    timeout: 500ms\n"
		"    adaptive: { target_latency_ms: 20, adjustment_interval: 100, min_rate: 100, max_rate: 100000 }\n"
		"  plain:\n"
		"  fifo:\n"
		"    hangup: writers\n"
		"    read_mode: stream\n"
		"    downstream: [plain, metrics]\n";
	struct apply_file af;
	struct apply_queue *q;
	char err[256] = "";
	int ret;

	ret = parse(text, &af, err);
	ok(ret == 0, "yaml: good file parses %s", err);
	if (ret)
		return;
	ok(af.nr == 5, "yaml: five queues");
	q = &af.queues[0];
	ok(!strcmp(q->name, "orders") && q->line == 3, "yaml: orders at line 3");
	ok(q->change.val.capacity_msgs == 1000 &&
	   q->change.val.write_timeout_ms == 2000 &&
	   q->change.val.high_watermark == 80 &&
	   q->change.val.low_watermark == 60 &&
	   q->change.val.max_msg_size == 4096 &&
	   q->change.val.capacity_bytes == 1 << 20 &&
	   q->change.val.strategy == BPQ_STRATEGY_BLOCK,
	   "yaml: orders values");
	ok(q->change.have == ((1U << setting_find("capacity_msgs")) |
			      (1U << setting_find("strategy")) |
			      (1U << setting_find("write_timeout_ms")) |
			      (1U << setting_find("high_watermark")) |
			      (1U << setting_find("low_watermark")) |
			      (1U << setting_find("max_msg_size")) |
			      (1U << setting_find("capacity_bytes"))),
	   "yaml: orders sets exactly what it names");
	q = &af.queues[1];
	ok(q->change.val.strategy == BPQ_STRATEGY_CREDIT &&
	   q->change.val.auto_credit == 1 && q->initial_credits == 100,
	   "yaml: flow_control");
	q = &af.queues[2];
	ok(q->change.val.strategy == BPQ_STRATEGY_ADAPTIVE &&
	   q->change.val.target_latency_us == 20000 &&
	   q->change.val.adjust_interval_ms == 100 &&
	   q->change.val.min_rate == 100 && q->change.val.max_rate == 100000 &&
	   q->change.val.write_timeout_ms == 500,
	   "yaml: adaptive");
	q = &af.queues[3];
	ok(!strcmp(q->name, "plain") && !q->change.have && !q->initial_credits,
	   "yaml: a queue with no settings");
	q = &af.queues[4];
	ok(q->change.val.hangup == BPQ_HANGUP_WRITERS &&
	   q->change.val.read_mode == BPQ_READ_STREAM &&
	   q->change.have == ((1U << setting_find("hangup")) |
			      (1U << setting_find("read_mode"))),
	   "yaml: hangup, read_mode");
	ok(q->nr_down == 2 && !strcmp(q->downstream[0], "plain") &&
	   !strcmp(q->downstream[1], "metrics") && q->down_line == 22,
	   "yaml: downstream, a sequence (line %d)", q->down_line);
	ok(af.queues[0].nr_down == 0, "yaml: no downstream");
	apply_free(&af);
}

static void test_yaml_errors(void)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "queues:\n  orders:\n    size: 10\n    colour: red\n",
		  "q.yaml:4: unknown key 'colour'" },
		{ "queues:\n  orders:\n    size: abc\n",
		  "q.yaml:3: bad value for 'size': 'abc'" },
		{ "queues:\n  orders:\n    size: 0\n",
		  "q.yaml:3: bad value for 'size': '0'" },
		{ "queues:\n  orders:\n    size:\n",
		  "q.yaml:3: bad value for 'size': ''" },
		{ "queues:\n  orders:\n    size: 1048577\n",
		  "q.yaml:3: bad value for 'size': '1048577'" },
		{ "queues:\n  orders:\n    strategy: fast\n",
		  "q.yaml:3: bad value for 'strategy': 'fast'" },
		{ "queues:\n  orders:\n    hangup: sometimes\n",
		  "q.yaml:3: bad value for 'hangup': 'sometimes'" },
		{ "queues:\n  orders:\n    hangup: { a: 1 }\n",
		  "q.yaml:3: bad value for 'hangup': not a scalar" },
		{ "queues:\n  orders:\n    read_mode: bytes\n",
		  "q.yaml:3: bad value for 'read_mode': 'bytes'" },
		{ "queues:\n  orders:\n    downstream: { a: 1 }\n",
		  "q.yaml:3: bad value for 'downstream': not a scalar" },
		{ "queues:\n  orders:\n    downstream: [a, 'b c']\n",
		  "q.yaml:3: bad value for 'downstream': 'b c'" },
		{ "queues:\n  orders:\n    downstream: [a, a]\n",
		  "q.yaml:3: 'a' twice in downstream" },
		{ "queues:\n  orders:\n    timeout: 5h\n",
		  "q.yaml:3: bad value for 'timeout': '5h'" },
		{ "queues:\n  orders:\n    high_watermark: 101\n",
		  "q.yaml:3: bad value for 'high_watermark': '101'" },
		{ "queues:\n  orders:\n    high_watermark: 50\n    low_watermark: 60\n",
		  "q.yaml:3: low_watermark 60 is above high_watermark 50" },
		{ "queues:\n  a:\n    size: 1\n  a:\n    size: 2\n",
		  "q.yaml:4: duplicate queue 'a'" },
		{ "queues:\n  a:\n    size: 1\n    size: 2\n",
		  "q.yaml:4: duplicate key 'size'" },
		{ "queues:\n  'a b':\n    size: 1\n",
		  "q.yaml:2: bad queue name 'a b'" },
		{ "queues:\n  a:\n    flow_control: { type: credit, initial_credits: x }\n",
		  "q.yaml:3: bad value for 'initial_credits': 'x'" },
		{ "queues:\n  a:\n    strategy: block\n    flow_control: { type: credit }\n",
		  "q.yaml:4: flow_control type 'credit' needs strategy 'credit'" },
		{ "queues:\n  a:\n    flow_control: { auto_credit: maybe }\n",
		  "q.yaml:3: bad value for 'auto_credit': 'maybe'" },
		{ "queues:\n  a:\n    adaptive: { min_rate: 10, max_rate: 5 }\n",
		  "q.yaml:3: min_rate 10 is above max_rate 5" },
		{ "queues:\n  a:\n    adaptive: { speed: 1 }\n",
		  "q.yaml:3: unknown key 'speed'" },
		{ "queues:\n  a:\n    adaptive: 5\n",
		  "q.yaml:3: adaptive must be a mapping" },
		{ "queue:\n  a:\n    size: 1\n",
		  "q.yaml:1: unknown key 'queue'" },
		{ "- a\n- b\n", "q.yaml:1: expected a mapping with key 'queues'" },
		{ "", "q.yaml:1: empty file" },
		{ "queues:\n  a:\n    size: [1\n", NULL /* syntax error */ },
	};
	struct apply_file af;
	char err[256];
	unsigned int i;
	int ret;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		ret = parse(cases[i].text, &af, err);
		if (cases[i].err)
			ok(ret == -EINVAL && !strcmp(err, cases[i].err),
			   "yaml error: %s (got '%s')", cases[i].err, err);
		else
			ok(ret == -EINVAL && !strncmp(err, "q.yaml:", 7),
			   "yaml syntax error reported with a line (got '%s')",
			   err);
	}
}

static void test_yaml_window(void)
{
	const char *text =
		"queues:\n"
		"  jobs:\n"
		"    strategy: window\n"
		"    window: { ack_mode: delivery, initial_cwnd: 20, min_cwnd: 2,\n"
		"              max_cwnd: 1000, initial_ssthresh: 64, ack_timeout: 2s }\n"
		"  work:\n"
		"    flow_control: { type: credit, initial_credits: 8, auto_credit: ack }\n";
	struct apply_file af;
	struct apply_queue *q;
	char err[256] = "";
	int ret;

	ret = parse(text, &af, err);
	ok(ret == 0 && af.nr == 2, "yaml: window file parses %s", err);
	if (ret)
		return;
	q = &af.queues[0];
	ok(q->change.val.strategy == BPQ_STRATEGY_WINDOW &&
	   q->change.val.ack_mode == BPQ_ACK_MODE_DELIVERY &&
	   q->change.val.initial_cwnd == 20 && q->change.val.min_cwnd == 2 &&
	   q->change.val.max_cwnd == 1000 &&
	   q->change.val.initial_ssthresh == 64 &&
	   q->change.val.ack_timeout_ms == 2000, "yaml: window settings");
	q = &af.queues[1];
	ok(q->change.val.strategy == BPQ_STRATEGY_CREDIT &&
	   q->change.val.auto_credit == BPQ_AUTO_CREDIT_ACK &&
	   q->initial_credits == 8, "yaml: auto_credit: ack");
	apply_free(&af);

	ret = parse("queues:\n  a:\n    window: { min_cwnd: 5, initial_cwnd: 4 }\n",
		    &af, err);
	ok(ret == -EINVAL && strstr(err, "q.yaml:3: min_cwnd 5 is above initial_cwnd 4"),
	   "yaml error: min_cwnd above initial_cwnd (got '%s')", err);
	ret = parse("queues:\n  a:\n    window: { ack_mode: sometimes }\n",
		    &af, err);
	ok(ret == -EINVAL && strstr(err, "bad value for 'ack_mode'"),
	   "yaml error: bad ack_mode (got '%s')", err);
	ret = parse("queues:\n  a:\n    window: { ack_timeout: 2h }\n",
		    &af, err);
	ok(ret == -EINVAL && strstr(err, "bad value for 'ack_timeout'"),
	   "yaml error: ack_timeout beyond an hour (got '%s')", err);
	ret = parse("queues:\n  a:\n    window: { cwnd: 4 }\n", &af, err);
	ok(ret == -EINVAL && strstr(err, "unknown key 'cwnd'"),
	   "yaml error: unknown window key (got '%s')", err);
}

static void fake_snaps(struct queue_snap *s)
{
	unsigned int i;

	memset(s, 0, 2 * sizeof(*s));
	s[0].index = 0;
	strcpy(s[0].name, "orders");
	s[0].cfg.strategy = BPQ_STRATEGY_BLOCK;
	s[0].cfg.capacity_msgs = 1000;
	s[0].cfg.capacity_bytes = 1 << 20;
	s[0].st.depth_msgs = 250;
	s[0].st.utilization = 25;
	s[0].st.enqueued_msgs = 1000;
	s[0].st.stall_some_us = 1500000;
	s[0].st.stall_full_us = 250;
	s[0].st.dequeued_msgs = 740;
	s[0].st.dropped_oldest = 0;
	s[0].st.flushed = 10;
	s[0].st.backpressure_applied = 3;
	s[0].st.throughput = 120;
	s[0].st.latency_hist[0] = 5;	/* < 1.024 us */
	s[0].st.latency_hist[10] = 700;	/* 0.52 .. 1.05 ms */
	s[0].st.latency_hist[31] = 35;	/* the open last bucket */
	s[1].index = 4;
	strcpy(s[1].name, "we\"ird\\q");
	s[1].cfg.strategy = BPQ_STRATEGY_CREDIT;
	s[1].st.credits_available = 42;
	s[1].st.credit_starvation = 7;
	s[1].st.dropped_newest = 9;
	s[1].cfg.hangup = BPQ_HANGUP_WRITERS;
	s[1].st.stream = BPQ_STREAM_FAILED;
	s[1].st.stream_error = EIO;
	s[1].st.stream_epoch = 3;
	s[1].st.readers = 2;
	s[1].st.writers = 1;
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		s[1].st.latency_hist[i] = i;
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		s[1].st.processing_hist[i] = i;
	s[0].st.unacked = 40;
	s[0].st.acked_msgs = 700;
	s[0].st.nacked = 4;
	s[0].st.stale_acks = 2;
	s[0].st.partial_reads = 9;
	s[0].st.cwnd = 20;
	s[0].st.ssthresh = 16;
	s[0].st.inflight = 290;
	s[0].st.window_state = BPQ_WINDOW_RECOVERY;
	s[0].st.congestion_events = 3;
	s[0].st.ack_timeouts = 1;
	s[0].st.cwnd_limited_ns = 12345;
	s[0].cfg.ack_mode = BPQ_ACK_MODE_ACK;
	s[0].cfg.auto_credit = BPQ_AUTO_CREDIT_ACK;
	s[0].cfg.initial_cwnd = 10;
	s[0].st.processing_hist[3] = 6;
}

static char *capture(void (*fn)(FILE *f, const struct queue_snap *s, int n,
				int flag), const struct queue_snap *s, int n,
		     int flag)
{
	size_t len;
	char *buf;
	FILE *f;

	f = open_memstream(&buf, &len);
	fn(f, s, n, flag);
	fclose(f);
	return buf;
}

static void prom_all(FILE *f, const struct queue_snap *s, int n, int flag)
{
	(void)flag;
	print_prometheus(f, s, n);
}

static void show_one(FILE *f, const struct queue_snap *s, int n, int json)
{
	(void)n;
	print_show(f, s, json);
}

static void stats_one(FILE *f, const struct queue_snap *s, int n, int json)
{
	(void)n;
	print_stats(f, s, json);
}

static int count_lines(const char *text, const char *prefix)
{
	const char *p = text;
	int n = 0;

	while (p && *p) {
		if (!strncmp(p, prefix, strlen(prefix)))
			n++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

static uint64_t sample(const char *text, const char *start)
{
	const char *p = strstr(text, start);

	return p ? strtoull(p + strlen(start), NULL, 10) : UINT64_MAX;
}

static void test_prometheus(void)
{
	static const char *const metrics[] = {
		"bpq_enqueued_total", "bpq_dequeued_total",
		"bpq_messages_dropped_total", "bpq_backpressure_applied_total",
		"bpq_queue_utilization", "bpq_processing_latency_seconds",
		"bpq_throughput_rate", "bpq_credits_available",
		"bpq_credit_starvation_total", "bpq_stream_state",
		"bpq_stream_error", "bpq_stream_epoch", "bpq_readers",
		"bpq_writers", "bpq_waiting_time_seconds",
		"bpq_processing_time_seconds", "bpq_unacked", "bpq_acked_total",
		"bpq_nacked_total", "bpq_stale_acks_total",
		"bpq_congestion_events_total", "bpq_ack_timeouts_total",
	};
	const char *sample_re =
		"^[a-zA-Z_:][a-zA-Z0-9_:]*"
		"\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)+\\}"
		" -?[0-9.e+-]+$";
	struct queue_snap s[2];
	char *out, *line, *save, name[128];
	int bad = 0, mono = 1, i;
	uint64_t last = 0, v;
	regex_t re;

	fake_snaps(s);
	out = capture(prom_all, s, 2, 0);
	for (i = 0; i < 22; i++) {
		snprintf(name, sizeof(name), "# HELP %s ", metrics[i]);
		ok(count_lines(out, name) == 1, "prometheus: one HELP for %s",
		   metrics[i]);
		snprintf(name, sizeof(name), "# TYPE %s ", metrics[i]);
		ok(count_lines(out, name) == 1, "prometheus: one TYPE for %s",
		   metrics[i]);
	}
	ok(strstr(out, "# TYPE bpq_processing_latency_seconds histogram\n") != NULL,
	   "prometheus: latency is a histogram");
	ok(strstr(out, "bpq_enqueued_total{queue=\"orders\",strategy=\"block\"} 1000\n") != NULL,
	   "prometheus: enqueued sample");
	ok(strstr(out, "bpq_messages_dropped_total{queue=\"orders\",strategy=\"block\",reason=\"flushed\"} 10\n") != NULL,
	   "prometheus: flushed drop sample");
	ok(strstr(out, "bpq_messages_dropped_total{queue=\"we\\\"ird\\\\q\",strategy=\"credit\",reason=\"newest\"} 9\n") != NULL,
	   "prometheus: label value escaped");
	ok(strstr(out, "bpq_queue_utilization{queue=\"orders\",strategy=\"block\"} 0.25\n") != NULL,
	   "prometheus: utilization is 0..1");
	ok(strstr(out, "bpq_credits_available{queue=\"we\\\"ird\\\\q\",strategy=\"credit\"} 42\n") != NULL,
	   "prometheus: credits sample");
	ok(strstr(out, "le=\"1.024e-06\"} 5\n") != NULL,
	   "prometheus: first bucket bound 1.024us");
	ok(sample(out, "bpq_processing_latency_seconds_bucket{queue=\"orders\",strategy=\"block\",le=\"+Inf\"} ") == 740,
	   "prometheus: +Inf bucket counts all");
	ok(sample(out, "bpq_processing_latency_seconds_count{queue=\"orders\",strategy=\"block\"} ") == 740,
	   "prometheus: _count equals +Inf");
	ok(count_lines(out, "bpq_processing_latency_seconds_bucket{queue=\"orders\"") == 32,
	   "prometheus: 32 buckets per queue");
	ok(strstr(out, "bpq_stream_state{queue=\"orders\",strategy=\"block\",state=\"open\"} 1\n") &&
	   strstr(out, "bpq_stream_state{queue=\"orders\",strategy=\"block\",state=\"failed\"} 0\n") &&
	   count_lines(out, "bpq_stream_state{queue=\"orders\"") == 4,
	   "prometheus: stream state set, open");
	ok(strstr(out, "bpq_pressure_stall_seconds_total{queue=\"orders\",strategy=\"block\",kind=\"some\"} 1.500000\n") &&
	   strstr(out, "bpq_pressure_stall_seconds_total{queue=\"orders\",strategy=\"block\",kind=\"full\"} 0.000250\n"),
	   "prometheus: the stall totals, some and full");
	ok(strstr(out, "bpq_stream_state{queue=\"we\\\"ird\\\\q\",strategy=\"credit\",state=\"failed\"} 1\n") &&
	   strstr(out, "bpq_stream_state{queue=\"we\\\"ird\\\\q\",strategy=\"credit\",state=\"open\"} 0\n"),
	   "prometheus: stream state set, failed");
	ok(strstr(out, "bpq_stream_error{queue=\"orders\",strategy=\"block\",error=\"none\"} 0\n") &&
	   strstr(out, "bpq_stream_error{queue=\"we\\\"ird\\\\q\",strategy=\"credit\",error=\"EIO\"} 5\n"),
	   "prometheus: stream error, named");
	ok(strstr(out, "bpq_stream_epoch{queue=\"we\\\"ird\\\\q\",strategy=\"credit\"} 3\n") &&
	   strstr(out, "bpq_readers{queue=\"we\\\"ird\\\\q\",strategy=\"credit\"} 2\n") &&
	   strstr(out, "bpq_writers{queue=\"we\\\"ird\\\\q\",strategy=\"credit\"} 1\n"),
	   "prometheus: epoch, readers, writers");

	regcomp(&re, sample_re, REG_EXTENDED | REG_NOSUB);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			last = 0;	/* the next metric */
			continue;
		}
		if (regexec(&re, line, 0, NULL, 0)) {
			printf("# malformed: %s\n", line);
			bad++;
		}
		if (strstr(line, "_bucket{queue=\"orders\"")) {
			v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
			if (v < last)
				mono = 0;
			last = v;
		}
	}
	regfree(&re);
	ok(!bad, "prometheus: every sample line well-formed");
	ok(mono, "prometheus: buckets cumulative");
	free(out);

	/* the sojourn times under both names; the processing times */
	out = capture(prom_all, s, 2, 0);
	ok(sample(out, "bpq_waiting_time_seconds_count{queue=\"orders\",strategy=\"block\"} ") == 740 &&
	   sample(out, "bpq_waiting_time_seconds_bucket{queue=\"orders\",strategy=\"block\",le=\"1.024e-06\"} ") == 5,
	   "prometheus: waiting time is the sojourn histogram");
	ok(sample(out, "bpq_processing_time_seconds_count{queue=\"orders\",strategy=\"block\"} ") == 6 &&
	   sample(out, "bpq_processing_time_seconds_count{queue=\"we\\\"ird\\\\q\",strategy=\"credit\"} ") == 496,
	   "prometheus: processing time is processing_hist");
	ok(strstr(out, "# TYPE bpq_processing_time_seconds histogram\n") &&
	   strstr(out, "# TYPE bpq_waiting_time_seconds histogram\n") &&
	   count_lines(out, "bpq_processing_latency_seconds_bucket{") == 64,
	   "prometheus: the deprecated name stays, with every bucket");
	ok(strstr(out, "# HELP bpq_processing_latency_seconds ") &&
	   strstr(strstr(out, "# HELP bpq_processing_latency_seconds "),
		  "Deprecated") < strstr(out, "# TYPE bpq_processing_latency_seconds"),
	   "prometheus: its help says deprecated");
	ok(strstr(out, "bpq_acked_total{queue=\"orders\",strategy=\"block\"} 700\n") &&
	   strstr(out, "bpq_nacked_total{queue=\"orders\",strategy=\"block\"} 4\n") &&
	   strstr(out, "bpq_stale_acks_total{queue=\"orders\",strategy=\"block\"} 2\n") &&
	   strstr(out, "bpq_unacked{queue=\"orders\",strategy=\"block\"} 40\n"),
	   "prometheus: acknowledgment counters");
	ok(!strstr(out, "bpq_cwnd") && !strstr(out, "bpq_ssthresh") &&
	   !strstr(out, "bpq_inflight"),
	   "prometheus: no window gauges without a window queue");
	free(out);
	s[0].cfg.strategy = BPQ_STRATEGY_WINDOW;
	out = capture(prom_all, s, 2, 0);
	ok(strstr(out, "# TYPE bpq_cwnd gauge\n") &&
	   strstr(out, "bpq_cwnd{queue=\"orders\",strategy=\"window\"} 20\n") &&
	   strstr(out, "bpq_ssthresh{queue=\"orders\",strategy=\"window\"} 16\n") &&
	   strstr(out, "bpq_inflight{queue=\"orders\",strategy=\"window\"} 290\n") &&
	   strstr(out, "bpq_congestion_events_total{queue=\"orders\",strategy=\"window\"} 3\n") &&
	   strstr(out, "bpq_ack_timeouts_total{queue=\"orders\",strategy=\"window\"} 1\n"),
	   "prometheus: window gauges and counters");
	ok(count_lines(out, "bpq_cwnd{") == 1,
	   "prometheus: window gauges for window queues only");
	free(out);
	s[0].cfg.strategy = BPQ_STRATEGY_BLOCK;

	/* _sum: midpoints, 5 * 512ns + 700 * 786432ns + 35 * 2^40ns */
	out = capture(prom_all, s, 1, 0);
	{
		const char *p = strstr(out, "_sum{queue=\"orders\",strategy=\"block\"} ");
		double sum = p ? strtod(strchr(p, ' ') + 1, NULL) : -1;
		double want = (5 * 512.0 + 700 * 786432.0 +
			       35 * 1099511627776.0) / 1e9;

		ok(sum > want * 0.999999 && sum < want * 1.000001,
		   "prometheus: _sum from bucket midpoints (%g vs %g)", sum,
		   want);
	}
	free(out);
}

static int json_valid(const char *text)
{
	char path[] = "/tmp/bpq-host-test-XXXXXX";
	char cmd[128];
	int fd, ret;
	FILE *f;

	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "python3 -m json.tool <%s >/dev/null 2>&1", path);
	ret = system(cmd);
	unlink(path);
	return ret == 0;
}

/*
 * The reader of the receive ring on a fake mapping: what the kernel would
 * write, put there by hand. Its fd is -1, so a sync fails (EBADF) without
 * a module, and NEED_SYNC is left clear but where that is the point.
 */
#define RING_BYTES	4096

static struct {
	struct bpq_ring_ctl ctl;
	unsigned char pad[4096 - sizeof(struct bpq_ring_ctl)];
	unsigned char data[RING_BYTES];
} __attribute__((aligned(4096))) fake;

/* Publish one record at the tail, as the kernel does; its length. */
static uint64_t fake_put(uint32_t len, uint32_t flags, uint64_t seq,
			 unsigned char fill)
{
	struct bpq_ring_rec rec = { .len = len, .flags = flags, .seq = seq,
				    .timestamp_ns = seq * 10, .lost = seq & 1 };
	uint64_t tail = fake.ctl.tail, off = tail & (RING_BYTES - 1);

	memcpy(fake.data + off, &rec, sizeof(rec));
	if (!(flags & BPQ_RING_PAD))
		memset(fake.data + off + sizeof(rec), fill, len);
	if (flags & BPQ_RING_PAD)
		fake.ctl.tail = (tail | (RING_BYTES - 1)) + 1;
	else
		fake.ctl.tail = tail + BPQ_RING_RECORD(len);
	return BPQ_RING_RECORD(len);
}

static int all_bytes(const void *p, unsigned char c, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		if (*b++ != c)
			return 0;
	return 1;
}

static void test_ring(void)
{
	struct bpq_ring r = {
		.fd = -1, .ctl = &fake.ctl, .data = fake.data,
		.mask = RING_BYTES - 1,
	};
	struct bpq_msg_info info;
	unsigned char buf[256];
	const void *p;
	uint64_t pos;
	int ret;

	fake.ctl.ring_bytes = RING_BYTES;
	ok(bpq_ring_peek(&r, &p, &info) == -EAGAIN, "ring: empty peek");
	ok(bpq_ring_wait(&r, 0) == -EBADF, "ring: empty wait syncs (EBADF)");
	ok(bpq_ring_recv(&r, buf, sizeof(buf), NULL, 0) == -EBADF,
	   "ring: empty recv syncs (EBADF)");

	fake_put(13, 0, 1, 0xa1);
	fake_put(8, 0, 2, 0xa2);
	ret = bpq_ring_peek(&r, &p, &info);
	ok(ret == 13 && p == fake.data + sizeof(struct bpq_ring_rec) &&
	   all_bytes(p, 0xa1, 13), "ring: peek gives the first in place");
	ok(info.seq == 1 && info.timestamp_ns == 10 && info.lost == 1 &&
	   info.len == 13 && info.offset == 0, "ring: peek info");
	ok(bpq_ring_peek(&r, NULL, NULL) == 13 && fake.ctl.head == 0,
	   "ring: peek does not consume");
	ok(bpq_ring_wait(&r, -1) == 0, "ring: wait returns at once");
	bpq_ring_advance(&r);
	ok(r.head == BPQ_RING_RECORD(13) && fake.ctl.head == r.head,
	   "ring: advance publishes head, 8-byte aligned (%llu)",
	   (unsigned long long)fake.ctl.head);
	ok(bpq_ring_recv(&r, buf, 7, &info, 0) == -EMSGSIZE &&
	   fake.ctl.head == r.head, "ring: recv too small leaves it");
	memset(buf, 0, sizeof(buf));
	ok(bpq_ring_recv(&r, buf, sizeof(buf), &info, 0) == 8 &&
	   all_bytes(buf, 0xa2, 8) && info.seq == 2,
	   "ring: recv copies it out");
	ok(r.head == fake.ctl.tail && fake.ctl.head == r.head &&
	   bpq_ring_peek(&r, &p, NULL) == -EAGAIN, "ring: empty again");

	/* a pad ends the lap; the next record is at the next lap */
	fake_put(0, BPQ_RING_PAD, 0, 0);
	fake_put(100, 0, 3, 0xa3);
	ok(bpq_ring_peek(&r, &p, &info) == 100 && info.seq == 3 &&
	   p == fake.data + sizeof(struct bpq_ring_rec),
	   "ring: pad skipped to the next lap");
	ok(fake.ctl.head == RING_BYTES, "ring: a pad skipped is handed back");
	bpq_ring_advance(&r);

	/* fewer than a record header's bytes left: the next lap too */
	pos = fake.ctl.tail;
	while (RING_BYTES - (fake.ctl.tail & (RING_BYTES - 1)) >=
	       BPQ_RING_RECORD(64) + sizeof(struct bpq_ring_rec))
		fake_put(64, 0, 4, 0xa4);
	fake_put(RING_BYTES - (fake.ctl.tail & (RING_BYTES - 1)) -
		 sizeof(struct bpq_ring_rec) - 24, 0, 5, 0xa5);
	ok((fake.ctl.tail & (RING_BYTES - 1)) == RING_BYTES - 24,
	   "ring: 24 bytes left in the lap");
	fake.ctl.tail = (fake.ctl.tail | (RING_BYTES - 1)) + 1;
	fake_put(32, 0, 6, 0xa6);
	while ((ret = bpq_ring_peek(&r, &p, &info)) >= 0 && info.seq != 6)
		bpq_ring_advance(&r);
	ok(ret == 32 && all_bytes(p, 0xa6, 32) &&
	   (r.head & (RING_BYTES - 1)) == 0 && r.head > pos,
	   "ring: short tail of a lap skipped");
	bpq_ring_advance(&r);

	/* a record that claims more than the kernel published */
	fake_put(16, 0, 7, 0xa7);
	fake.ctl.tail -= 8;
	ok(bpq_ring_peek(&r, &p, &info) == -EIO, "ring: torn record: EIO");
	fake.ctl.tail += 8;
	ok(bpq_ring_peek(&r, &p, &info) == 16, "ring: whole again");
	bpq_ring_advance(&r);

	/* the kernel asks for a sync: advance tries it (EBADF, ignored) */
	fake_put(16, 0, 8, 0xa8);
	fake.ctl.flags = BPQ_RING_NEED_SYNC;
	ok(bpq_ring_recv(&r, buf, sizeof(buf), &info, 0) == 16 &&
	   fake.ctl.head == fake.ctl.tail, "ring: recv with NEED_SYNC set");
	fake.ctl.flags = 0;

	/* end of stream: records first, then end of file without a sync */
	fake_put(24, 0, 9, 0xa9);
	fake.ctl.end = BPQ_STREAM_COMPLETED;
	ok(bpq_ring_peek(&r, &p, &info) == 24 && info.seq == 9,
	   "ring: a record before the end is still read");
	ok(bpq_ring_wait(&r, -1) == 0, "ring: wait with a record at the end");
	bpq_ring_advance(&r);
	ok(bpq_ring_peek(&r, &p, &info) == 0, "ring: completed: peek 0 (EOF)");
	ok(bpq_ring_wait(&r, -1) == 0 && bpq_ring_wait(&r, 0) == 0,
	   "ring: completed: wait returns 0, no sync (no EBADF)");
	pos = r.head;
	ok(bpq_ring_recv(&r, buf, sizeof(buf), &info, -1) == 0 &&
	   r.head == pos && fake.ctl.head == pos,
	   "ring: completed: recv 0, head stays");
	fake.ctl.end = BPQ_STREAM_CANCELLED;
	ok(bpq_ring_recv(&r, buf, sizeof(buf), &info, 0) == 0,
	   "ring: cancelled: recv 0");
	fake.ctl.end = BPQ_STREAM_FAILED;
	ok(bpq_ring_peek(&r, &p, &info) == -ECONNRESET &&
	   bpq_ring_wait(&r, -1) == -ECONNRESET &&
	   bpq_ring_recv(&r, buf, sizeof(buf), &info, 100) == -ECONNRESET,
	   "ring: failed: peek, wait, recv -ECONNRESET");
	fake_put(8, 0, 10, 0xaa);
	ok(bpq_ring_recv(&r, buf, sizeof(buf), &info, 0) == 8 &&
	   info.seq == 10 && bpq_ring_peek(&r, NULL, NULL) == -ECONNRESET,
	   "ring: failed: the last record, then -ECONNRESET");
	fake.ctl.end = 0;
	ok(bpq_ring_peek(&r, &p, &info) == -EAGAIN &&
	   bpq_ring_wait(&r, 0) == -EBADF,
	   "ring: reopened (end 0): empty again, wait syncs");
}

static void test_json(void)
{
	struct queue_snap s[2];
	int have_python;
	char *out;

	fake_snaps(s);
	have_python = system("python3 -c '' >/dev/null 2>&1") == 0;

	out = capture(print_list, s, 2, 1);
	ok(strstr(out, "\"name\":\"we\\\"ird\\\\q\"") != NULL,
	   "json: strings escaped");
	ok(strstr(out, "\"depth_msgs\":250,\"capacity_msgs\":1000") != NULL,
	   "json list: depth and capacity");
	if (have_python)
		ok(json_valid(out), "json list: valid (python3 json.tool)");
	free(out);
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"strategy\":\"block\"") &&
	   strstr(out, "\"adjust_interval_ms\":0") &&
	   strstr(out, "\"utilization\":25"), "json show: settings and state");
	if (have_python)
		ok(json_valid(out), "json show: valid (python3 json.tool)");
	free(out);
	out = capture(stats_one, s, 1, 1);
	ok(strstr(out, "\"enqueued_msgs\":1000") &&
	   strstr(out, "{\"le_ns\":1024,\"count\":5}") &&
	   strstr(out, "{\"le_ns\":18446744073709551615,\"count\":35}"),
	   "json stats: counters and histogram");
	if (have_python)
		ok(json_valid(out), "json stats: valid (python3 json.tool)");
	free(out);
	out = capture(show_one, s + 1, 1, 1);
	ok(strstr(out, "\"hangup\":\"writers\"") &&
	   strstr(out, "\"stream\":\"failed\",\"stream_error\":\"EIO\","
		       "\"stream_epoch\":3,\"readers\":2,\"writers\":1"),
	   "json show: hangup and the stream, failed");
	if (have_python)
		ok(json_valid(out), "json show failed: valid (python3 json.tool)");
	free(out);
	out = capture(stats_one, s, 1, 1);
	ok(strstr(out, "\"stream\":\"open\",\"stream_error\":null,") != NULL,
	   "json stats: an open stream, no error");
	free(out);
	out = capture(show_one, s + 1, 1, 0);
	ok(strstr(out, "\n  hangup: writers\n") &&
	   strstr(out, "\n  stream: failed EIO\n  stream_epoch: 3\n"
		       "  readers: 2\n  writers: 1\n"),
	   "show: hangup and the stream as sysfs has them");
	free(out);
	out = capture(print_list, s, 2, 0);
	ok(strstr(out, " 25%\n") && strstr(out, "  0% failed EIO\n"),
	   "list: only a stream that is not open is shown");
	free(out);
	out = capture(print_list, s, 2, 1);
	ok(strstr(out, "\"stream\":\"failed\"") != NULL,
	   "json list: the stream");
	if (have_python)
		ok(json_valid(out), "json list with streams: valid");
	free(out);
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"auto_credit\":2,") &&
	   strstr(out, "\"ack_mode\":\"ack\",\"initial_cwnd\":10,") &&
	   strstr(out, "\"unacked\":40,\"cwnd\":20,\"ssthresh\":16,"
		       "\"inflight\":290,\"window_state\":null"),
	   "json show: auto_credit a number, window fields, no window state");
	free(out);
	out = capture(show_one, s, 1, 0);
	ok(strstr(out, "\n  auto_credit: ack\n") &&
	   strstr(out, "\n  ack_mode: ack\n  initial_cwnd: 10\n") &&
	   strstr(out, "\n  unacked: 40\n") && !strstr(out, "cwnd: 20"),
	   "show: auto_credit ack, unacked; no window state on block");
	ok(strstr(out, "\n  hold: none\n  pressure_source: none\n") != NULL,
	   "show: no hold, no pressure");
	free(out);
	s[0].st.holds = BPQ_HOLD_ADMIN | BPQ_HOLD_LINK;
	s[0].st.watermark = 1;
	out = capture(show_one, s, 1, 0);
	ok(strstr(out, "\n  hold: admin link\n"
		       "  pressure_source: watermark admin link\n") != NULL,
	   "show: holds by name, watermark first in the source");
	free(out);
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"hold\":[\"admin\",\"link\"],\"pressure_source\":"
		       "[\"watermark\",\"admin\",\"link\"]") != NULL,
	   "json show: holds as arrays");
	if (have_python)
		ok(json_valid(out), "json show holds: valid");
	free(out);
	s[0].upstream = "src";
	s[0].downstream = "sink.a sink-b";
	out = capture(show_one, s, 1, 0);
	ok(strstr(out, "\n  upstream: src\n  downstream: sink.a sink-b\n") !=
	   NULL, "show: the linked queues");
	free(out);
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"upstream\":[\"src\"],\"downstream\":[\"sink.a\","
		       "\"sink-b\"]") != NULL, "json show: the linked queues");
	free(out);
	s[0].upstream = "";
	s[0].downstream = NULL;
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"upstream\":[]") && !strstr(out, "downstream"),
	   "json show: no links, and none read");
	if (have_python)
		ok(json_valid(out), "json show links: valid");
	free(out);
	s[0].upstream = NULL;
	s[0].st.holds = 0;
	s[0].st.watermark = 0;
	s[0].cfg.strategy = BPQ_STRATEGY_WINDOW;
	out = capture(show_one, s, 1, 0);
	ok(strstr(out, "\n  unacked: 40\n  cwnd: 20\n  ssthresh: 16\n"
		       "  inflight: 290\n  window_state: recovery\n") != NULL,
	   "show: the window's state");
	free(out);
	out = capture(show_one, s, 1, 1);
	ok(strstr(out, "\"window_state\":\"recovery\"") != NULL,
	   "json show: window_state by name");
	if (have_python)
		ok(json_valid(out), "json show window: valid");
	free(out);
	out = capture(stats_one, s, 1, 0);
	ok(strstr(out, "\n  acked_msgs: 700\n  nacked: 4\n  stale_acks: 2\n"
		       "  partial_reads: 9\n  held_ns: 0\n  stall_some_us: 1500000\n"
		       "  stall_full_us: 250\n  congestion_events: 3\n  ack_timeouts: 1\n"
		       "  cwnd_limited_ns: 12345\n") &&
	   strstr(out, "\n  processing_hist:\n    < 8192 ns: 6\n"),
	   "stats: acknowledgments, the window, processing_hist");
	free(out);
	s[0].cfg.strategy = BPQ_STRATEGY_BLOCK;
	out = capture(stats_one, s, 1, 0);
	ok(strstr(out, "\n  stale_acks: 2\n") && !strstr(out, "congestion_events"),
	   "stats: no window counters on block");
	free(out);
	out = capture(stats_one, s, 1, 1);
	ok(strstr(out, "\"acked_msgs\":700,\"nacked\":4,\"stale_acks\":2,"
		       "\"partial_reads\":9,\"held_ns\":0,\"stall_some_us\":1500000,"
		       "\"stall_full_us\":250,\"congestion_events\":3,\"ack_timeouts\":1,"
		       "\"cwnd_limited_ns\":12345") &&
	   strstr(out, "\"processing_hist\":[{\"le_ns\":1024,\"count\":0},") &&
	   strstr(out, "{\"le_ns\":8192,\"count\":6}"),
	   "json stats: acknowledgments, window counters, processing_hist");
	if (have_python)
		ok(json_valid(out), "json stats with processing_hist: valid");
	free(out);
	out = capture(print_list, s, 0, 1);
	ok(!strcmp(out, "[]\n"), "json list: empty");
	free(out);
	if (!have_python)
		printf("# SKIP python3 not found: JSON checked by pattern only\n");
}

int main(void)
{
	test_strategies();
	test_stream_names();
	test_window_names();
	test_settings();
	test_yaml_good();
	test_yaml_errors();
	test_yaml_window();
	test_prometheus();
	test_json();
	test_ring();
	printf("1..%d\n", nr_tests);
	if (nr_failed)
		printf("# %d of %d failed\n", nr_failed, nr_tests);
	return nr_failed ? 1 : 0;
}
