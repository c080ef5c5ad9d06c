// SPDX-License-Identifier: GPL-2.0
/*
 * apply FILE: check the whole file, then create the queues it names that
 * do not exist, give each its settings in one BPQ_IOC_SET_CONFIG and grant
 * its initial credits, then make the links. If a step fails, queues
 * created by this run are destroyed and the settings of the others are
 * put back. Then the groups: created (parents first) or given their
 * settings through sysfs, and their members put in. What the groups need
 * that the file cannot say (a parent or group outside it exists, a group
 * that exists has the parent the file gives) is checked before anything
 * is done. With --check, only print what it would do.
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

/* The file's groups and memberships against the groups there are. */
static int check_groups(const char *file, const struct apply_file *af)
{
	char parent[BPQ_NAME_MAX + 1];
	const struct apply_group *g;
	const struct apply_member *m;
	int i, ret, exists;

	for (g = af->groups; g < af->groups + af->nr_groups; g++) {
		exists = group_exists(g->name);
		ret = exists > 0 ? group_read(g->name, "parent", parent,
					      sizeof(parent)) : exists;
		if (ret < 0) {
			err_msg("apply %s:%d: group '%s': %s", file, g->line,
				g->name, strerror(-ret));
			return -1;
		}
		if (exists && strcmp(parent, g->parent)) {
			err_msg("apply %s:%d: group '%s' is within '%s', not "
				"'%s': a group's parent is set when it is "
				"created", file, g->line, g->name,
				*parent ? parent : "(none)",
				*g->parent ? g->parent : "(none)");
			return -1;
		}
		for (i = 0; g->parent[0] && i < af->nr_groups; i++)
			if (!strcmp(af->groups[i].name, g->parent))
				break;
		if (g->parent[0] && i == af->nr_groups &&
		    group_exists(g->parent) <= 0) {
			err_msg("apply %s:%d: group '%s': no parent group "
				"'%s'", file, g->line, g->name, g->parent);
			return -1;
		}
	}
	for (m = af->members; m < af->members + af->nr_members; m++) {
		for (i = 0; i < af->nr_groups; i++)
			if (!strcmp(af->groups[i].name, m->group))
				break;
		if (i == af->nr_groups && group_exists(m->group) <= 0) {
			err_msg("apply %s:%d: queue '%s': no group '%s'", file,
				m->line, m->queue, m->group);
			return -1;
		}
		for (i = 0; i < af->nr; i++)
			if (!strcmp(af->queues[i].name, m->queue))
				break;
		if (i == af->nr && find_by_name(m->queue) < 0) {
			err_msg("apply %s:%d: group '%s': no queue '%s'", file,
				m->line, m->group, m->queue);
			return -1;
		}
	}
	return 0;
}

/* Queue @idx's group, "" for none, from its sysfs file; -errno */
static int queue_group(int idx, char *buf, size_t len)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%d/group", idx);
	ret = read_text(path, buf, len);
	return ret < 0 ? ret : 0;
}

/* What apply_groups() did: groups created, queues moved (their old group) */
struct group_undo {
	int *created;		/* 1: af->groups[i] was created */
	int *moved;		/* 1: af->members[i] was moved */
	char (*old)[BPQ_NAME_MAX + 1];
	int *index;
};

static int apply_groups(const char *file, const struct apply_file *af,
			struct group_undo *u)
{
	char cur[BPQ_NAME_MAX + 1];
	const struct apply_group *g;
	const struct apply_member *m;
	const char *attr = "", *step;
	int i, ret, idx;

	for (i = 0; i < af->nr_groups; i++) {
		g = &af->groups[i];
		ret = group_exists(g->name);
		if (ret == 0) {
			step = "create";
			ret = bpq_group_create(g->name, g->parent, g->capacity,
					       g->high, g->low);
			u->created[i] = !ret;
		} else if (ret > 0) {
			step = "set";
			ret = group_configure(g->name, g->capacity, g->high,
					      g->low, &attr);
		} else {
			step = "look up";
		}
		if (ret < 0) {
			err_msg("apply %s:%d: group '%s': %s%s%s: %s", file,
				g->line, g->name, step, *step == 's' ? " " : "",
				*step == 's' ? attr : "", strerror(-ret));
			return ret;
		}
		printf("group %s %s\n", g->name,
		       u->created[i] ? "created" : "updated");
	}
	for (i = 0; i < af->nr_members; i++) {
		m = &af->members[i];
		idx = find_by_name(m->queue);
		ret = idx;
		step = "look up";
		if (idx >= 0) {
			u->index[i] = idx;
			ret = queue_group(idx, cur, sizeof(cur));
			step = "join";
		}
		if (ret >= 0 && strcmp(cur, m->group)) {
			ret = bpq_group_join(idx, m->group);
			if (!ret) {
				u->moved[i] = 1;
				strcpy(u->old[i], cur);
				printf("bpq%d %s joined %s\n", idx, m->queue,
				       m->group);
			}
		}
		if (ret < 0) {
			err_msg("apply %s:%d: queue '%s': %s group '%s': %s",
				file, m->line, m->queue, step, m->group,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void free_group_undo(struct group_undo *u)
{
	free(u->created);
	free(u->moved);
	free(u->index);
	free(u->old);
}

/* Undo apply_groups(): members back where they were, new groups gone */
static void groups_roll_back(const struct apply_file *af,
			     struct group_undo *u)
{
	int i;

	for (i = af->nr_members - 1; i >= 0; i--)
		if (u->moved[i])
			bpq_group_join(u->index[i], u->old[i]);
	for (i = af->nr_groups - 1; i >= 0; i--)
		if (u->created[i])
			bpq_group_destroy(af->groups[i].name);
}

int apply_main(int argc, char **argv)
{
	const char *file = NULL;
	struct group_undo gu = { 0 };
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
	if (check_groups(file, &af)) {
		apply_free(&af);
		return EXIT_FAIL;
	}
	undo = calloc(af.nr + 1, sizeof(*undo));
	made = calloc(af.nr_links + 1, sizeof(*made));
	gu.created = calloc(af.nr_groups + 1, sizeof(*gu.created));
	gu.moved = calloc(af.nr_members + 1, sizeof(*gu.moved));
	gu.index = calloc(af.nr_members + 1, sizeof(*gu.index));
	gu.old = calloc(af.nr_members + 1, sizeof(*gu.old));
	if (!undo || !made || !gu.created || !gu.moved || !gu.index ||
	    !gu.old) {
		free_group_undo(&gu);
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
	if (ret == EXIT_OK && apply_groups(file, &af, &gu)) {
		groups_roll_back(&af, &gu);
		for (i = 0; i < af.nr_links; i++)
			if (made[i][0])
				bpq_unlink(made[i][0] - 1, made[i][1] - 1);
		roll_back(undo, af.nr);
		ret = EXIT_FAIL;
	}
	free_group_undo(&gu);
	free(made);
	free(undo);
	apply_free(&af);
	return ret;
}
