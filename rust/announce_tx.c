// SPDX-License-Identifier: GPL-2.0
/*
 * The announce's sender (rust/announce.rs decides what to send): rounds of
 * ready-made Ethernet frames transmitted on the VF's PF netdev from a
 * delayed work, with growing gaps. C for the skb and workqueue macros.
 */
#include <linux/etherdevice.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "shim.h"

struct ivf_announce {
	struct delayed_work work;
	struct pci_dev *vf;
	/* Guards the plan against a new start while a round runs. */
	struct mutex lock;
	u8 frames[IVF_ANNOUNCE_MAX_FRAMES][IVF_ANNOUNCE_FRAME_MAX];
	u16 lens[IVF_ANNOUNCE_MAX_FRAMES];
	u32 count;
	u32 rounds_left;
	u32 delay_ms;
	u32 step_ms;
	/*
	 * When the last announce's first round went or goes (jiffies), for
	 * the rate limit; whether that round has run.
	 */
	unsigned long last_start;
	bool started;
	bool first_sent;
	struct ivf_announce_stats stats;
};

/*
 * At most one announce a second starts per VF, whoever its user: a VFIO
 * user can resume its VF from streams in a loop (or close, reopen and
 * resume), and each announce is up to 160 broadcast frames. One sooner is
 * not dropped (a guest that really arrived twice in a second must still be
 * announced where it is): it waits for its slot, and replaces an announce
 * still waiting for its own, so a loop of starts sends one a second.
 */
#define IVF_ANNOUNCE_MIN_GAP HZ

/* The PF netdev of @vf, held; rtnl only to find it. */
static struct net_device *ivf_announce_netdev(struct pci_dev *vf, netdevice_tracker *tracker)
{
	struct net_device *nd = NULL, *it;

	if (!vf->is_virtfn)
		return NULL;
	rtnl_lock();
	for_each_netdev(&init_net, it) {
		if (it->dev.parent == &vf->physfn->dev) {
			nd = it;
			netdev_hold(nd, tracker, GFP_KERNEL);
			break;
		}
	}
	rtnl_unlock();
	return nd;
}

/* Sends one frame (Ethernet, maybe one 802.1Q tag) on @nd. */
static int ivf_announce_xmit(struct net_device *nd, const u8 *frame, u16 len)
{
	struct sk_buff *skb;
	int ret;

	if (!netif_running(nd) || !netif_carrier_ok(nd))
		return -ENETDOWN;
	skb = alloc_skb(LL_RESERVED_SPACE(nd) + len, GFP_KERNEL);
	if (!skb)
		return -ENOMEM;
	skb_reserve(skb, LL_RESERVED_SPACE(nd));
	skb_put_data(skb, frame, len);
	skb->dev = nd;
	skb_reset_mac_header(skb);
	skb->protocol = eth_hdr(skb)->h_proto;
	/* Taps and the flow dissector read the network header: set it. */
	skb_set_network_header(skb, skb->protocol == htons(ETH_P_8021Q) ? VLAN_ETH_HLEN : ETH_HLEN);
	skb->priority = TC_PRIO_CONTROL;
	ret = dev_queue_xmit(skb);
	return ret == NET_XMIT_SUCCESS || ret == NET_XMIT_CN ? 0 : -EIO;
}

static void ivf_announce_round(struct work_struct *work)
{
	struct ivf_announce *a = container_of(to_delayed_work(work), struct ivf_announce, work);
	netdevice_tracker tracker;
	struct net_device *nd;
	u32 i;

	mutex_lock(&a->lock);
	if (!a->rounds_left) {
		mutex_unlock(&a->lock);
		return;
	}
	nd = ivf_announce_netdev(a->vf, &tracker);
	for (i = 0; i < a->count; i++) {
		if (!nd || ivf_announce_xmit(nd, a->frames[i], a->lens[i]))
			a->stats.failed++;
		else
			a->stats.sent++;
	}
	if (nd)
		netdev_put(nd, &tracker);
	a->stats.rounds++;
	a->first_sent = true;
	if (--a->rounds_left) {
		schedule_delayed_work(&a->work, msecs_to_jiffies(a->delay_ms));
		a->delay_ms += a->step_ms;
	}
	mutex_unlock(&a->lock);
}

struct ivf_announce *ivf_announce_alloc(struct pci_dev *vf)
{
	struct ivf_announce *a = kzalloc(sizeof(*a), GFP_KERNEL);

	if (!a)
		return NULL;
	a->vf = vf;
	mutex_init(&a->lock);
	INIT_DELAYED_WORK(&a->work, ivf_announce_round);
	return a;
}

bool ivf_announce_start(struct ivf_announce *a, const u8 *frames, const u16 *lens, u32 count,
			u32 dropped, u32 rounds, u32 first_ms, u32 step_ms)
{
	unsigned long now, slot;
	u32 i;

	cancel_delayed_work_sync(&a->work);
	mutex_lock(&a->lock);
	now = jiffies;
	slot = now;
	if (a->started) {
		/* A first round still waiting gives its slot to this one. */
		slot = a->first_sent ? a->last_start + IVF_ANNOUNCE_MIN_GAP : a->last_start;
		if (time_before(now, slot))
			a->stats.limited++;
		else
			slot = now;
	}
	a->started = true;
	a->first_sent = false;
	a->last_start = slot;
	a->count = min_t(u32, count, IVF_ANNOUNCE_MAX_FRAMES);
	for (i = 0; i < a->count; i++) {
		a->lens[i] = min_t(u16, lens[i], IVF_ANNOUNCE_FRAME_MAX);
		memcpy(a->frames[i], frames + i * IVF_ANNOUNCE_FRAME_MAX, a->lens[i]);
	}
	a->rounds_left = rounds;
	a->delay_ms = first_ms;
	a->step_ms = step_ms;
	a->stats.announces++;
	a->stats.dropped += dropped;
	mutex_unlock(&a->lock);
	/* The first round at once (the guest runs here now), or in its slot. */
	schedule_delayed_work(&a->work, slot - now);
	return slot == now;
}

void ivf_announce_stop(struct ivf_announce *a)
{
	/*
	 * The limit outlives the user: a user that closes and reopens the VF
	 * in a loop still gets one announce a second.
	 */
	cancel_delayed_work_sync(&a->work);
}

void ivf_announce_stats(struct ivf_announce *a, struct ivf_announce_stats *out)
{
	mutex_lock(&a->lock);
	*out = a->stats;
	mutex_unlock(&a->lock);
}

void ivf_announce_free(struct ivf_announce *a)
{
	if (!a)
		return;
	cancel_delayed_work_sync(&a->work);
	mutex_destroy(&a->lock);
	kfree(a);
}
