// SPDX-License-Identifier: GPL-2.0
/*
 * apply FILE: check the whole file, then create the queues it names that
 * do not exist, give each its settings in one BPQ_IOC_SET_CONFIG and grant
 * its initial credits. If a step fails, queues created by this run are
 * destroyed and the settings of the others are put back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "apply FILE";

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap), *nb;

	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* By name only: "apply" names queues, never numbers. */
static int find_by_name(const char *name)
{
	char qname[BPQ_NAME_MAX + 2];
	unsigned int idx[1024];
	int i, n;

	n = bpq_list(idx, 1024);
	if (n < 0)
		return n;
	for (i = 0; i < n && i < 1024; i++)
		if (bpq_queue_name(idx[i], qname, sizeof(qname)) >= 0 &&
		    !strcmp(qname, name))
			return idx[i];
	return -ENOENT;
}

struct undo {
	int index;
	int created;
	int have_old;
	struct bpq_config old;
};

static void roll_back(struct undo *u, int n)
{
	char path[32];
	int fd;

	while (n-- > 0) {
		if (u[n].created) {
			bpq_destroy(u[n].index);
			continue;
		}
		if (!u[n].have_old)
			continue;
		snprintf(path, sizeof(path), "/dev/bpq%d", u[n].index);
		fd = queue_open(path, O_CONTROL);
		if (fd >= 0) {
			bpq_set_config(fd, &u[n].old);
			close(fd);
		}
	}
}

static int apply_one(const char *file, const struct apply_queue *q,
		     struct undo *u)
{
	struct bpq_config cfg;
	const char *step;
	unsigned int index;
	char path[32];
	int fd, ret;

	u->index = find_by_name(q->name);
	if (u->index == -ENOENT) {
		step = "create";
		ret = bpq_create(q->name, &index);
		if (ret < 0)
			goto err;
		u->index = index;
		u->created = 1;
	} else if (u->index < 0) {
		step = "look up";
		ret = u->index;
		goto err;
	}
	snprintf(path, sizeof(path), "/dev/bpq%d", u->index);
	step = "open";
	fd = queue_open(path, O_CONTROL);
	ret = fd;
	if (fd < 0)
		goto err;
	step = "get config";
	ret = bpq_get_config(fd, &cfg);
	if (ret < 0)
		goto err_close;
	u->old = cfg;
	u->have_old = 1;
	change_apply(&q->change, &cfg);
	step = "set config";
	ret = bpq_set_config(fd, &cfg);
	if (ret < 0)
		goto err_close;
	if (q->initial_credits) {
		step = "grant";
		ret = bpq_grant(fd, q->initial_credits);
		if (ret < 0)
			goto err_close;
	}
	close(fd);
	printf("bpq%d %s %s\n", u->index, q->name,
	       u->created ? "created" : "updated");
	return 0;

err_close:
	close(fd);
err:
	err_msg("apply %s:%d: queue '%s': %s: %s", file, q->line, q->name, step,
		strerror(-ret));
	return ret;
}

/*
 * After every queue of the file: its links, each to a queue of the file
 * or one that exists. A link already there is fine. The links made are
 * counted in *@made, for a roll back.
 */
static int apply_links(const char *file, const struct apply_queue *q,
		       const struct undo *u, int *made)
{
	int i, down, ret;

	for (i = 0; i < q->nr_down; i++) {
		down = find_by_name(q->downstream[i]);
		ret = down < 0 ? down : bpq_link(u->index, down);
		if (!ret)
			made[i] = down + 1;
		if (ret && ret != -EEXIST) {
			err_msg("apply %s:%d: queue '%s': link to '%s': %s",
				file, q->down_line, q->name, q->downstream[i],
				ret == -ELOOP ? "it would close a loop" :
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int apply_main(int argc, char **argv)
{
	struct apply_file af;
	struct undo *undo;
	char err[512], *text;
	const char *file;
	size_t len;
	FILE *f;
	int i, j, ret, (*made)[BPQ_LINKS_MAX];

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 2)
		return usage_fail(usage, "apply: %s",
				  argc < 2 ? "no file given" : "too many arguments");
	file = argv[1];
	f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) {
		err_msg("apply %s: %s", file, strerror(errno));
		return EXIT_FAIL;
	}
	text = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text) {
		err_msg("apply %s: cannot read", file);
		return EXIT_FAIL;
	}
	ret = apply_parse(file, text, len, &af, err, sizeof(err));
	free(text);
	if (ret) {
		err_msg("%s", err);
		return EXIT_FAIL;
	}
	undo = calloc(af.nr + 1, sizeof(*undo));
	made = calloc(af.nr + 1, sizeof(*made));
	if (!undo || !made) {
		free(undo);
		apply_free(&af);
		err_msg("apply %s: %s", file, strerror(ENOMEM));
		return EXIT_FAIL;
	}
	for (i = 0; i < af.nr; i++) {
		if (apply_one(file, &af.queues[i], &undo[i])) {
			roll_back(undo, i + 1);
			break;
		}
	}
	ret = i < af.nr ? EXIT_FAIL : EXIT_OK;
	for (i = 0; ret == EXIT_OK && i < af.nr; i++) {
		if (!apply_links(file, &af.queues[i], &undo[i], made[i]))
			continue;
		/* the links made go, then the queues as they were */
		for (; i >= 0; i--)
			for (j = 0; j < BPQ_LINKS_MAX; j++)
				if (made[i][j])
					bpq_unlink(undo[i].index,
						   made[i][j] - 1);
		roll_back(undo, af.nr);
		ret = EXIT_FAIL;
	}
	free(made);
	free(undo);
	apply_free(&af);
	return ret;
}
