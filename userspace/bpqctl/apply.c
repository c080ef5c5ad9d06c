// SPDX-License-Identifier: GPL-2.0
/*
 * apply FILE: check the whole file, then create the queues it names that
 * do not exist, give each its settings in one BPQ_IOC_SET_CONFIG and grant
 * its initial credits, then make the links. If a step fails, queues
 * created by this run are destroyed and the settings of the others are
 * put back. With --check, only print what it would do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "apply [--check] FILE";

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
	if (q->initial_credits && !q->no_grant) {
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
 * After every queue of the file: the links, between queues of the file
 * or ones that exist. A link already there is fine. The links made are
 * kept in made[] (upstream + 1, downstream + 1), for a roll back.
 */
static int apply_links(const char *file, const struct apply_file *af,
		       int (*made)[2])
{
	const struct apply_link *l;
	int i, up, down, ret;

	for (i = 0; i < af->nr_links; i++) {
		l = &af->links[i];
		up = find_by_name(l->up);
		down = find_by_name(l->down);
		ret = up < 0 ? up : down < 0 ? down : bpq_link(up, down);
		if (!ret) {
			made[i][0] = up + 1;
			made[i][1] = down + 1;
		}
		if (ret && ret != -EEXIST) {
			err_msg("apply %s:%d: queue '%s': link to '%s': %s",
				file, l->line, l->up, l->down,
				ret == -ELOOP ? "it would close a loop" :
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int apply_main(int argc, char **argv)
{
	const char *file = NULL;
	struct apply_file af;
	struct undo *undo;
	int i, ret, check = 0, (*made)[2];

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		if (!strcmp(argv[i], "--check"))
			check = 1;
		else if ((argv[i][0] == '-' && argv[i][1]) || file)
			return usage_fail(usage, "apply: unexpected '%s'",
					  argv[i]);
		else
			file = argv[i];
	}
	if (!file)
		return usage_fail(usage, "apply: no file given");
	if (apply_load("apply", file, &af))
		return EXIT_FAIL;
	apply_notes(file, &af);
	if (check) {
		apply_print(stdout, &af);
		apply_free(&af);
		return EXIT_OK;
	}
	undo = calloc(af.nr + 1, sizeof(*undo));
	made = calloc(af.nr_links + 1, sizeof(*made));
	if (!undo || !made) {
		free(undo);
		free(made);
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
	if (ret == EXIT_OK && apply_links(file, &af, made)) {
		/* the links made go, then the queues as they were */
		for (i = 0; i < af.nr_links; i++)
			if (made[i][0])
				bpq_unlink(made[i][0] - 1, made[i][1] - 1);
		roll_back(undo, af.nr);
		ret = EXIT_FAIL;
	}
	free(made);
	free(undo);
	apply_free(&af);
	return ret;
}
