/*
 * A second independent LACP partner for the tests: DPDK's bonding driver in 802.3ad mode
 * (drivers/net/bonding/rte_eth_bond_8023ad.c) on af_packet members.
 *
 *   dpdk_partner EAL-ARGS -- IPV4 STATE-FILE IFACE [IFACE ...]
 *   EAL-ARGS: --no-huge -m 256 --no-pci --file-prefix=UNIQUE
 *
 * testpmd's forwarding engines call tx_burst only after receiving something, so the bond's
 * LACPDUs would never leave; this program calls rx_burst and tx_burst on every loop. It
 * answers ARP requests and ICMP echo requests for IPV4, so a ping crosses the aggregate, and
 * writes the bond's 802.3ad view of each member as JSON to STATE-FILE (rewritten atomically
 * every 100 ms) for the tests to read.
 *
 * af_packet members report no carrier changes to DPDK (their link is up from start to stop,
 * and set_link_down is not supported), so the bond would go on sending into a cut cable until
 * its 90 s long timeout. This program plays the NIC driver's link-state interrupt instead: a
 * member whose interface loses IFF_RUNNING leaves the bond, and joins again (a new af_packet
 * port on the same interface) when it is back, as the bond handles a member's link down/up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#define BURST 32

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void mac_str(const struct rte_ether_addr *a, char *out)
{
	sprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", a->addr_bytes[0], a->addr_bytes[1],
		a->addr_bytes[2], a->addr_bytes[3], a->addr_bytes[4], a->addr_bytes[5]);
}

static void params_json(FILE *f, const char *name, const struct port_params *p)
{
	char mac[18];
	mac_str(&p->system, mac);
	fprintf(f, "\"%s\": {\"system_priority\": %u, \"system\": \"%s\", \"key\": %u, "
		"\"port_priority\": %u, \"port_number\": %u}",
		name, rte_be_to_cpu_16(p->system_priority), mac, rte_be_to_cpu_16(p->key),
		rte_be_to_cpu_16(p->port_priority), rte_be_to_cpu_16(p->port_number));
}

struct member;
static void write_state(uint16_t bond, const char *path, uint64_t answered,
			const struct member *members, int n);

/* Turns an ARP request or ICMP echo request for `ip` into its answer; 0 if not one. */
static int answer(struct rte_mbuf *m, uint32_t ip, const struct rte_ether_addr *mac)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint16_t type = rte_be_to_cpu_16(eth->ether_type);

	if (type == RTE_ETHER_TYPE_ARP && m->data_len >= sizeof(*eth) + sizeof(struct rte_arp_hdr)) {
		struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
		if (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) || arp->arp_data.arp_tip != ip)
			return 0;
		arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
		arp->arp_data.arp_tha = arp->arp_data.arp_sha;
		arp->arp_data.arp_tip = arp->arp_data.arp_sip;
		arp->arp_data.arp_sha = *mac;
		arp->arp_data.arp_sip = ip;
	} else if (type == RTE_ETHER_TYPE_IPV4 &&
		   m->data_len >= sizeof(*eth) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_icmp_hdr)) {
		struct rte_ipv4_hdr *iph = (struct rte_ipv4_hdr *)(eth + 1);
		size_t ihl = (iph->version_ihl & 0xf) * 4;
		if (iph->next_proto_id != IPPROTO_ICMP || iph->dst_addr != ip)
			return 0;
		struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)((char *)iph + ihl);
		if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST)
			return 0;
		iph->dst_addr = iph->src_addr;
		iph->src_addr = ip;   /* the header's checksum is unchanged by the swap */
		icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
		icmp->icmp_cksum = 0;
		uint16_t len = rte_be_to_cpu_16(iph->total_length) - ihl;
		icmp->icmp_cksum = ~rte_raw_cksum(icmp, len);
	} else {
		return 0;
	}
	eth->dst_addr = eth->src_addr;
	eth->src_addr = *mac;
	return 1;
}

struct member {
	char ifname[IF_NAMESIZE];
	int port;           /* its DPDK port while it is in the bond, else -1 */
	char vdev[32];
};

static int generation;

static int iface_running(const char *ifname)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), running = 0;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%.15s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		running = (ifr.ifr_flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
	if (fd >= 0)
		close(fd);
	return running;
}

/* A new af_packet port on the member's interface, added to the bond. */
static int join(uint16_t bond, struct member *m)
{
	char args[64];
	uint16_t port;
	snprintf(m->vdev, sizeof(m->vdev), "net_af_packet%d", generation++);
	snprintf(args, sizeof(args), "iface=%s", m->ifname);
	if (rte_vdev_init(m->vdev, args) != 0 || rte_eth_dev_get_port_by_name(m->vdev, &port) != 0) {
		fprintf(stderr, "dpdk_partner: no af_packet port on %s\n", m->ifname);
		return -1;
	}
	if (rte_eth_bond_slave_add(bond, port) != 0) {
		fprintf(stderr, "dpdk_partner: %s does not join the bond\n", m->ifname);
		rte_vdev_uninit(m->vdev);
		return -1;
	}
	m->port = port;
	fprintf(stderr, "dpdk_partner: %s joins as port %u\n", m->ifname, port);
	return 0;
}

/* Each member by its interface's name: its 802.3ad state, or "in_bond": false. */
static void write_state(uint16_t bond, const char *path, uint64_t answered,
			const struct member *members, int n)
{
	char tmp[4096], mac[18];
	struct rte_ether_addr bond_mac;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return;
	rte_eth_macaddr_get(bond, &bond_mac);
	mac_str(&bond_mac, mac);
	fprintf(f, "{\"mac\": \"%s\", \"answered\": %lu, \"members\": {", mac, (unsigned long)answered);
	for (int i = 0; i < n; i++) {
		struct rte_eth_bond_8023ad_slave_info info;
		memset(&info, 0, sizeof(info));
		fprintf(f, "%s\"%s\": {", i ? ", " : "", members[i].ifname);
		if (members[i].port < 0 || rte_eth_bond_8023ad_slave_info(bond, members[i].port, &info) != 0) {
			fputs("\"in_bond\": false}", f);
			continue;
		}
		fprintf(f, "\"in_bond\": true, \"selected\": %d, \"actor_state\": %u, \"partner_state\": %u, ",
			(int)info.selected, info.actor_state, info.partner_state);
		params_json(f, "actor", &info.actor);
		fputs(", ", f);
		params_json(f, "partner", &info.partner);
		fputs("}", f);
	}
	fputs("}}\n", f);
	fclose(f);
	rename(tmp, path);
}

static void leave(uint16_t bond, struct member *m)
{
	rte_eth_bond_slave_remove(bond, m->port);
	rte_eth_dev_stop(m->port);
	rte_eth_dev_close(m->port);
	rte_vdev_uninit(m->vdev);
	fprintf(stderr, "dpdk_partner: %s leaves (no carrier)\n", m->ifname);
	m->port = -1;
}

int main(int argc, char **argv)
{
	int used = rte_eal_init(argc, argv);
	if (used < 0) {
		fprintf(stderr, "dpdk_partner: EAL init failed\n");
		return 1;
	}
	argc -= used;
	argv += used;
	int nmembers = argc - 3;
	if (nmembers < 1 || nmembers > 8) {
		fprintf(stderr, "usage: dpdk_partner EAL-ARGS -- IPV4 STATE-FILE IFACE [IFACE ...]\n");
		return 1;
	}
	uint32_t ip;
	if (inet_pton(AF_INET, argv[1], &ip) != 1) {
		fprintf(stderr, "dpdk_partner: bad address %s\n", argv[1]);
		return 1;
	}
	const char *state = argv[2];
	struct member members[8];
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	int created = rte_eth_bond_create("net_bonding0", BONDING_MODE_8023AD, rte_socket_id());
	if (created < 0) {
		fprintf(stderr, "dpdk_partner: cannot create the bond\n");
		return 1;
	}
	uint16_t bond = created;
	for (int i = 0; i < nmembers; i++) {
		snprintf(members[i].ifname, sizeof(members[i].ifname), "%s", argv[3 + i]);
		members[i].port = -1;
		if (join(bond, &members[i]) != 0)
			return 1;
	}
	struct rte_mempool *pool = rte_pktmbuf_pool_create("mbufs", 4095, 128, 0,
		RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (pool == NULL || rte_eth_dev_configure(bond, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(bond, 0, 256, rte_socket_id(), NULL, pool) != 0 ||
	    rte_eth_tx_queue_setup(bond, 0, 256, rte_socket_id(), NULL) != 0 ||
	    rte_eth_dev_start(bond) != 0) {
		fprintf(stderr, "dpdk_partner: cannot start the bond\n");
		return 1;
	}
	/* In mode 4 the bond drops broadcasts (ARP requests) unless promiscuous or allmulti,
	 * and af_packet members have no allmulti. */
	if (rte_eth_promiscuous_enable(bond) != 0)
		fprintf(stderr, "dpdk_partner: promiscuous mode refused\n");
	struct rte_ether_addr mac;
	rte_eth_macaddr_get(bond, &mac);
	fprintf(stderr, "dpdk_partner: bond started\n");

	uint64_t answered = 0;
	double next_state = 0;
	while (!stop) {
		struct rte_mbuf *in[BURST], *out[BURST];
		uint16_t n = rte_eth_rx_burst(bond, 0, in, BURST), k = 0;
		for (uint16_t i = 0; i < n; i++) {
			if (answer(in[i], ip, &mac))
				out[k++] = in[i];
			else
				rte_pktmbuf_free(in[i]);
		}
		/* Called even with nothing to send: it is where the bond sends its LACPDUs. */
		uint16_t sent = rte_eth_tx_burst(bond, 0, out, k);
		answered += sent;
		for (uint16_t i = sent; i < k; i++)
			rte_pktmbuf_free(out[i]);
		double t = now_s();
		if (t >= next_state) {
			for (int i = 0; i < nmembers; i++) {
				int running = iface_running(members[i].ifname);
				if (!running && members[i].port >= 0)
					leave(bond, &members[i]);
				else if (running && members[i].port < 0)
					join(bond, &members[i]);
			}
			write_state(bond, state, answered, members, nmembers);
			next_state = t + 0.1;
		}
		if (n == 0)
			usleep(1000);   /* a test partner: no need to spin a core */
	}
	rte_eth_dev_stop(bond);
	rte_eth_dev_close(bond);
	rte_eal_cleanup();
	return 0;
}
