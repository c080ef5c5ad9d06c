// SPDX-License-Identifier: GPL-2.0
/*
 * bpqd's decisions, from the cluster's view alone (no I/O, so the host
 * tests can check them on views they make).
 */
#include "bpqd.h"

/*
 * least_loaded: a node takes work while it is the least loaded or within
 * margin_pct (percentage points of utilization) of it; otherwise it holds
 * its queues (+cluster) so that the work goes to the others. Returns
 * whether node @self should hold.
 */
unsigned int least_load(const struct node *nodes, int n)
{
	unsigned int least = ~0U;
	int i;

	for (i = 0; i < n; i++)
		if (nodes[i].load < least)
			least = nodes[i].load;
	return least;
}

int least_loaded_holds(const struct node *nodes, int n, int self,
		       unsigned int margin_pct)
{
	return nodes[self].load > least_load(nodes, n) + margin_pct;
}

/*
 * budget: @budget messages a second split among @n nodes by their
 * demands, max-min fair (water filling): a node that wants less than an
 * even split of what is left gets what it wants and a tenth more (room to
 * show it wants more), the rest share what remains evenly; DEMAND_MORE is
 * a node whose writers waited for its share. Each share is at least 1 and
 * the shares add up to at most @budget (a budget below @n gives 1 each).
 */
void budget_split(const uint64_t *demand, int n, uint64_t budget,
		  uint64_t *share)
{
	uint64_t left = budget, even, want;
	int i, open = n, done[BPQD_NODES_MAX] = { 0 }, changed = 1;

	if (n <= 0)
		return;
	if (n > BPQD_NODES_MAX)
		n = BPQD_NODES_MAX;
	while (changed && open) {
		changed = 0;
		even = left / open;
		for (i = 0; i < n; i++) {
			if (done[i] || demand[i] == DEMAND_MORE)
				continue;
			want = demand[i] + demand[i] / 10 + 1;
			if (want < even) {
				share[i] = want;
				left -= want;
				done[i] = 1;
				open--;
				changed = 1;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (!done[i])
			share[i] = open ? left / open : 0;
	for (i = 0; i < n; i++)
		if (!share[i])
			share[i] = 1;
}
