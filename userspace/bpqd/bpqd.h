/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BPQ_BPQD_H
#define _BPQ_BPQD_H

#include <stdint.h>

#include "../bpqctl/bpqctl.h"

#define BPQD_NODES_MAX		64
/* demand of a node whose writers waited for its share: as much as it gets */
#define DEMAND_MORE		UINT64_MAX

/* One node of the cluster as bpqd last read it from Redis */
struct node {
	char id[64];
	unsigned int load;	/* percent: its queues' highest utilization */
	int held;		/* it holds its queues (+cluster) */
	uint64_t age_ms;	/* since its last report */
	int has_queue;		/* it reports the budget's queue */
	uint64_t demand;	/* budget: messages a second, or DEMAND_MORE */
	uint64_t share;		/* budget: what it applies */
};

/* policy.c: the decisions, from the view alone */
unsigned int least_load(const struct node *nodes, int n);
int least_loaded_holds(const struct node *nodes, int n, int self,
		       unsigned int margin_pct);
void budget_split(const uint64_t *demand, int n, uint64_t budget,
		  uint64_t *share);

#endif /* _BPQ_BPQD_H */
