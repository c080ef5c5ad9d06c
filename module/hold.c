// SPDX-License-Identifier: GPL-2.0
/*
 * Holds: pressure that is not the queue's own depth. A queue's effective
 * pressure (q->pressure) is its watermarks' (q->watermark) OR any hold
 * (q->holds, BPQ_HOLD_*), and its writers meet a hold exactly as they meet
 * watermark pressure, each strategy in its own way (bpq_has_room()):
 * block, credit, adaptive and window wait, drop-newest refuses,
 * drop-oldest pays no heed. The user's reasons (admin, cluster, system)
 * are set and cleared through sysfs; link and group by the kernel.
 *
 * The sysfs files pressure and stream can be polled: each edge is
 * kernfs_notify()'d, from under q->lock, on nodes looked up once, when the
 * queue's device was added, and let go when it is killed.
 */
#include <linux/kernfs.h>
#include <linux/sysfs.h>

#include "bpq.h"

static const char * const bpq_hold_names[] = {
	"admin", "cluster", "system", "link", "group",
};

static_assert(BIT(ARRAY_SIZE(bpq_hold_names) - 1) == BPQ_HOLD_GROUP);

/* After device_add(): the files whose edges are notified. */
void bpq_notify_init(struct bpq_queue *q)
{
	struct kernfs_node *pressure, *stream;

	pressure = sysfs_get_dirent(q->dev.kobj.sd, "pressure");
	stream = sysfs_get_dirent(q->dev.kobj.sd, "stream");
	spin_lock(&q->lock);
	q->kn_pressure = pressure;
	q->kn_stream = stream;
	spin_unlock(&q->lock);
}

/* At the queue's kill, before device_del(): no more notifications. */
void bpq_notify_exit(struct bpq_queue *q)
{
	struct kernfs_node *pressure, *stream;

	spin_lock(&q->lock);
	pressure = q->kn_pressure;
	stream = q->kn_stream;
	q->kn_pressure = NULL;
	q->kn_stream = NULL;
	spin_unlock(&q->lock);
	sysfs_put(pressure);
	sysfs_put(stream);
}

/* Under q->lock: the pollers of a sysfs file (or none yet) hear of it. */
void bpq_notify(struct kernfs_node *kn)
{
	if (kn)
		kernfs_notify(kn);
}

/* Set (@on) or clear the holds @mask of @q, and let writers meet it. */
int bpq_hold(struct bpq_queue *q, u32 mask, bool on)
{
	struct bpq_defer df __bpq_noinit;
	int ret = 0;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else {
		if (on)
			q->holds |= mask;
		else
			q->holds &= ~mask;
		bpq_room_made(q, &df);
	}
	bpq_unlock(q, &df);
	return ret;
}

/*
 * "none", or the names of @holds, "watermark" first if @watermark: what
 * the files hold and pressure_source read.
 */
ssize_t bpq_hold_format(u32 holds, bool watermark, char *buf)
{
	unsigned int i;
	int len = 0;

	if (watermark)
		len = sysfs_emit(buf, "watermark");
	for (i = 0; i < ARRAY_SIZE(bpq_hold_names); i++)
		if (holds & BIT(i))
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     bpq_hold_names[i]);
	if (!len)
		len = sysfs_emit(buf, "none");
	return len + sysfs_emit_at(buf, len, "\n");
}

/* "+admin", "-cluster", ...: one of the user's reasons set or cleared */
int bpq_hold_store(struct bpq_queue *q, const char *buf)
{
	int i;

	if (*buf != '+' && *buf != '-')
		return -EINVAL;
	i = sysfs_match_string(bpq_hold_names, buf + 1);
	if (i < 0 || !(BIT(i) & BPQ_HOLD_USER))
		return -EINVAL;
	return bpq_hold(q, BIT(i), *buf == '+');
}
