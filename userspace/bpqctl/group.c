// SPDX-License-Identifier: GPL-2.0
/*
 * group create/destroy/join/leave/show/list: groups of queues, with a
 * capacity and watermarks over the sum of their members' depths (bpq(4),
 * "Groups"). Made through the control device; read, and their settings
 * changed, through /sys/class/bpq_group/NAME/. The sysfs helpers here
 * serve apply too.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"group create NAME [--parent P] capacity_msgs=N [high_watermark=PCT] "
	"[low_watermark=PCT]\n"
	"       bpqctl group destroy NAME\n"
	"       bpqctl group join Q NAME\n"
	"       bpqctl group leave Q\n"
	"       bpqctl group show [NAME] [--json]\n"
	"       bpqctl group list [--json]";

/* The sysfs file @attr of group @name, newline dropped; -errno */
int group_read(const char *name, const char *attr, char *buf, size_t len)
{
	char path[160];
	int ret;

	snprintf(path, sizeof(path), BPQ_GROUP_SYSFS_CLASS "/%s/%s", name,
		 attr);
	ret = read_text(path, buf, len);
	return ret < 0 ? ret : 0;
}

static int group_read_u64(const char *name, const char *attr, uint64_t *v)
{
	char buf[32];
	int ret = group_read(name, attr, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	return parse_u64(buf, UINT64_MAX, v);
}

static int group_write(const char *name, const char *attr, unsigned int v)
{
	char path[160], buf[16];
	int fd, n, ret = 0;

	snprintf(path, sizeof(path), BPQ_GROUP_SYSFS_CLASS "/%s/%s", name,
		 attr);
	n = snprintf(buf, sizeof(buf), "%u\n", v);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/* 1 if group @name exists, 0 if not, else -errno */
int group_exists(const char *name)
{
	char buf[32];
	int ret = group_read(name, "capacity_msgs", buf, sizeof(buf));

	return ret == -ENOENT ? 0 : ret < 0 ? ret : 1;
}

/*
 * Give group @name its capacity and watermarks through sysfs. The kernel
 * keeps low <= high at every write, so the watermarks go in the order
 * that keeps it: high first when the new low is above the old high.
 * On failure, *attr names the file.
 */
int group_configure(const char *name, unsigned int capacity,
		    unsigned int high, unsigned int low, const char **attr)
{
	uint64_t old_high;
	int ret;

	*attr = "high_watermark";
	ret = group_read_u64(name, *attr, &old_high);
	if (ret < 0)
		return ret;
	*attr = "capacity_msgs";
	ret = group_write(name, *attr, capacity);
	if (ret < 0)
		return ret;
	if (low > old_high) {
		*attr = "high_watermark";
		ret = group_write(name, *attr, high);
		if (!ret) {
			*attr = "low_watermark";
			ret = group_write(name, *attr, low);
		}
	} else {
		*attr = "low_watermark";
		ret = group_write(name, *attr, low);
		if (!ret) {
			*attr = "high_watermark";
			ret = group_write(name, *attr, high);
		}
	}
	return ret;
}

/* A watermark: a percent, 1 ... 100, with or without a '%' */
static int parse_pct(const char *s, unsigned int *out)
{
	char buf[16];
	uint64_t v;
	size_t n = strlen(s);

	if (n && s[n - 1] == '%')
		n--;
	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (parse_u64(buf, 100, &v) || !v)
		return -EINVAL;
	*out = v;
	return 0;
}

static const char *group_strerror(int err)
{
	return err == -EBUSY ? "it has members or groups within" :
	       strerror(-err);
}

static int group_create(int argc, char **argv)
{
	unsigned int capacity = 0, high = 80, low = 60;
	const char *name = NULL, *parent = NULL, *val;
	uint64_t v;
	int i, ret;

	for (i = 1; i < argc; i++) {
		val = strchr(argv[i], '=');
		if (!strcmp(argv[i], "--parent") || !strcmp(argv[i], "-p")) {
			if (++i == argc)
				return usage_fail(usage, "group create: "
						  "--parent needs a group");
			parent = argv[i];
		} else if (!strncmp(argv[i], "--parent=", 9)) {
			parent = argv[i] + 9;
		} else if (argv[i][0] == '-') {
			return usage_fail(usage, "group create: unexpected "
					  "'%s'", argv[i]);
		} else if (!val) {
			if (name)
				return usage_fail(usage, "group create: "
						  "unexpected '%s'", argv[i]);
			name = argv[i];
		} else if (!strncmp(argv[i], "capacity_msgs=", 14) ||
			   !strncmp(argv[i], "capacity=", 9)) {
			if (parse_u64(val + 1, UINT32_MAX, &v) || !v)
				return usage_fail(usage, "group create: bad "
						  "capacity '%s' (1 or more "
						  "messages)", val + 1);
			capacity = v;
		} else if (!strncmp(argv[i], "high_watermark=", 15)) {
			if (parse_pct(val + 1, &high))
				return usage_fail(usage, "group create: bad "
						  "high_watermark '%s' (a "
						  "percent, 1 to 100)",
						  val + 1);
		} else if (!strncmp(argv[i], "low_watermark=", 14)) {
			if (parse_pct(val + 1, &low))
				return usage_fail(usage, "group create: bad "
						  "low_watermark '%s' (a "
						  "percent, 1 to 100)",
						  val + 1);
		} else {
			return usage_fail(usage, "group create: unknown "
					  "setting '%.*s'",
					  (int)(val - argv[i]), argv[i]);
		}
	}
	if (!name)
		return usage_fail(usage, "group create: no group name given");
	if (!capacity)
		return usage_fail(usage, "group create %s: capacity_msgs=N "
				  "needed", name);
	if (low > high)
		return usage_fail(usage, "group create %s: low_watermark %u "
				  "above high_watermark %u", name, low, high);
	ret = bpq_group_create(name, parent, capacity, high, low);
	if (ret < 0) {
		if (ret == -ENOENT && parent)
			err_msg("group create %s: no group '%s' (--parent)",
				name, parent);
		else if (ret == -EMLINK)
			err_msg("group create %s: groups nested too deep "
				"(%d levels at most)", name, BPQ_GROUP_DEPTH);
		else if (ret == -EINVAL)
			err_msg("group create %s: invalid name", name);
		else
			err_msg("group create %s: %s", name, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int group_destroy(int argc, char **argv)
{
	int ret;

	if (argc != 2)
		return usage_fail(usage, "group destroy: %s",
				  argc < 2 ? "no group name given" :
					     "too many arguments");
	ret = bpq_group_destroy(argv[1]);
	if (ret < 0) {
		err_msg("group destroy %s: %s", argv[1],
			ret == -ENOENT ? "no such group" : group_strerror(ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* join Q NAME, leave Q */
static int group_join(int argc, char **argv, int join)
{
	const char *cmd = join ? "join" : "leave";
	int idx, ret;

	if (argc != (join ? 3 : 2))
		return usage_fail(usage, "group %s: %s", cmd,
				  argc < (join ? 3 : 2) ?
				  (join ? "a queue and a group needed" :
					  "no queue given") :
				  "too many arguments");
	idx = bpq_lookup(argv[1]);
	if (idx < 0) {
		err_msg("group %s %s: %s", cmd, argv[1], strerror(-idx));
		return EXIT_FAIL;
	}
	ret = bpq_group_join(idx, join ? argv[2] : "");
	if (ret < 0) {
		if (join)
			err_msg("group join %s %s: %s", argv[1], argv[2],
				ret == -ENOENT ? "no such group" :
				strerror(-ret));
		else
			err_msg("group leave %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

struct group_snap {
	char name[BPQ_NAME_MAX + 1];
	char parent[BPQ_NAME_MAX + 1];
	uint64_t capacity, high, low, depth, util, pressure;
	char members[4096];
	char groups[4096];
};

static int group_load(const char *name, struct group_snap *g)
{
	int ret;

	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	ret = group_read(name, "parent", g->parent, sizeof(g->parent));
	if (!ret)
		ret = group_read_u64(name, "capacity_msgs", &g->capacity);
	if (!ret)
		ret = group_read_u64(name, "high_watermark", &g->high);
	if (!ret)
		ret = group_read_u64(name, "low_watermark", &g->low);
	if (!ret)
		ret = group_read_u64(name, "depth_msgs", &g->depth);
	if (!ret)
		ret = group_read_u64(name, "utilization", &g->util);
	if (!ret)
		ret = group_read_u64(name, "pressure", &g->pressure);
	if (!ret)
		ret = group_read(name, "members", g->members,
				 sizeof(g->members));
	if (!ret)
		ret = group_read(name, "groups", g->groups, sizeof(g->groups));
	return ret;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The groups' names, sorted; none if the class is not there */
static int group_names(char ***out)
{
	struct dirent *de;
	char **names = NULL, **tmp;
	int n = 0;
	DIR *d;

	*out = NULL;
	d = opendir(BPQ_GROUP_SYSFS_CLASS);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		tmp = realloc(names, (n + 1) * sizeof(*names));
		if (!tmp || !(tmp[n] = strdup(de->d_name))) {
			names = tmp ? tmp : names;
			while (n--)
				free(names[n]);
			free(names);
			closedir(d);
			return -ENOMEM;
		}
		names = tmp;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return n;
}

static void print_group(FILE *f, const struct group_snap *g, int json)
{
	if (json) {
		fputs("{\"name\":", f);
		json_string(f, g->name);
		fputs(",\"parent\":", f);
		if (*g->parent)
			json_string(f, g->parent);
		else
			fputs("null", f);
		fprintf(f, ",\"capacity_msgs\":%" PRIu64 ",\"high_watermark\":%"
			PRIu64 ",\"low_watermark\":%" PRIu64 ",\"depth_msgs\":%"
			PRIu64 ",\"utilization\":%" PRIu64 ",\"pressure\":%"
			PRIu64, g->capacity, g->high, g->low, g->depth, g->util,
			g->pressure);
		json_names(f, "members", g->members);
		json_names(f, "groups", g->groups);
		fputc('}', f);
		return;
	}
	fprintf(f, "group: %s\n  parent:%s%s\n  capacity_msgs: %" PRIu64
		"\n  high_watermark: %" PRIu64 "\n  low_watermark: %" PRIu64
		"\n  depth_msgs: %" PRIu64 "\n  utilization: %" PRIu64
		"\n  pressure: %" PRIu64 "\n  members:%s%s\n  groups:%s%s\n",
		g->name, *g->parent ? " " : "", g->parent, g->capacity, g->high,
		g->low, g->depth, g->util, g->pressure, *g->members ? " " : "",
		g->members, *g->groups ? " " : "", g->groups);
}

static void print_group_line(FILE *f, const struct group_snap *g, int w)
{
	fprintf(f, "%-*s %-*s %8" PRIu64 "/%-8" PRIu64 " %3" PRIu64 "%%%s  %s\n",
		w, g->name, w, *g->parent ? g->parent : "-", g->depth,
		g->capacity, g->util, g->pressure ? " pressure" : "         ",
		*g->members ? g->members : "-");
}

/* show [NAME] [--json], list [--json] */
static int group_show(int argc, char **argv, int list)
{
	const char *cmd = list ? "list" : "show", *name = NULL;
	struct group_snap *g;
	int i, n, ret, w = 12, json = 0, status = EXIT_OK, shown = 0;
	char **names;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = 1;
		else if (argv[i][0] == '-' || name || list)
			return usage_fail(usage, "group %s: unexpected '%s'",
					  cmd, argv[i]);
		else
			name = argv[i];
	}
	g = malloc(sizeof(*g));
	if (!g) {
		err_msg("group %s: %s", cmd, strerror(ENOMEM));
		return EXIT_FAIL;
	}
	if (name) {
		ret = group_load(name, g);
		if (ret < 0) {
			err_msg("group show %s: %s", name,
				ret == -ENOENT ? "no such group" :
				strerror(-ret));
			free(g);
			return EXIT_FAIL;
		}
		print_group(stdout, g, json);
		if (json)
			putchar('\n');
		free(g);
		return EXIT_OK;
	}
	n = group_names(&names);
	if (n < 0) {
		err_msg("group %s: %s: %s", cmd, BPQ_GROUP_SYSFS_CLASS,
			strerror(-n));
		free(g);
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++)
		if ((int)strlen(names[i]) > w)
			w = strlen(names[i]);
	if (json)
		putchar('[');
	for (i = 0; i < n; i++) {
		ret = group_load(names[i], g);
		if (ret == -ENOENT)	/* destroyed meanwhile */
			continue;
		if (ret < 0) {
			err_msg("group %s: %s: %s", cmd, names[i],
				strerror(-ret));
			status = EXIT_FAIL;
			continue;
		}
		if (json) {
			if (shown)
				putchar(',');
			print_group(stdout, g, 1);
		} else if (list) {
			print_group_line(stdout, g, w);
		} else {
			print_group(stdout, g, 0);
		}
		shown++;
	}
	if (json)
		puts("]");
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(g);
	return status;
}

/*
 * The groups for "stats --prometheus": depth, capacity, utilization and
 * pressure of each, labelled with its name and parent. Groups that go
 * while they are read are left out.
 */
void print_group_prometheus(FILE *f)
{
	static const struct {
		const char *name, *help;
	} metrics[] = {
		{ "bpq_group_depth", "Messages in the group's queues and the groups within." },
		{ "bpq_group_capacity", "The group's capacity in messages." },
		{ "bpq_group_utilization", "Depth over capacity, 0 and up." },
		{ "bpq_group_pressure", "1 while the group holds its queues." },
	};
	struct group_snap *g;
	char **names;
	int i, n, k, *ok;

	n = group_names(&names);
	if (n <= 0)
		return;
	g = calloc(n, sizeof(*g));
	ok = calloc(n, sizeof(*ok));
	for (i = 0; g && ok && i < n; i++)
		ok[i] = !group_load(names[i], &g[i]);
	for (k = 0; g && ok && k < (int)(sizeof(metrics) / sizeof(metrics[0])); k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", metrics[k].name,
			metrics[k].help, metrics[k].name);
		for (i = 0; i < n; i++) {
			if (!ok[i])
				continue;
			fprintf(f, "%s{group=\"%s\",parent=\"%s\"} ",
				metrics[k].name, g[i].name, g[i].parent);
			if (k == 0)
				fprintf(f, "%llu\n", (unsigned long long)g[i].depth);
			else if (k == 1)
				fprintf(f, "%llu\n",
					(unsigned long long)g[i].capacity);
			else if (k == 2)
				fprintf(f, "%g\n", g[i].capacity ?
					(double)g[i].depth / g[i].capacity : 0);
			else
				fprintf(f, "%llu\n",
					(unsigned long long)g[i].pressure);
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(ok);
	free(g);
}

int group_main(int argc, char **argv)
{
	if (argc < 2)
		return usage_fail(usage, "group: no subcommand given");
	if (wants_help(argc, argv) || !strcmp(argv[1], "help"))
		return print_usage(usage);
	if (!strcmp(argv[1], "create"))
		return group_create(argc - 1, argv + 1);
	if (!strcmp(argv[1], "destroy"))
		return group_destroy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "join"))
		return group_join(argc - 1, argv + 1, 1);
	if (!strcmp(argv[1], "leave"))
		return group_join(argc - 1, argv + 1, 0);
	if (!strcmp(argv[1], "show"))
		return group_show(argc - 1, argv + 1, 0);
	if (!strcmp(argv[1], "list"))
		return group_show(argc - 1, argv + 1, 1);
	return usage_fail(usage, "group: unknown subcommand '%s'", argv[1]);
}
