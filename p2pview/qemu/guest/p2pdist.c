// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * p2pdist: ask the running kernel for every (provider, client) verdict.
 *
 * For each function with P2PDMA memory and every PCI function as the client,
 * calls pci_p2pdma_distance(provider, &client->dev, true): an inline in
 * include/linux/pci-p2pdma.h around the exported pci_p2pdma_distance_many(),
 * which evaluates the pair once per call (drivers/pci/p2pdma.c: through
 * upstream_bridge_distance_warn() in 5.10, calc_map_type_and_dist() from 5.15 on;
 * read in Debian's 5.10.223, 6.1.176, 6.12.117, 7.2.13 and 7.3~rc7 trees).
 * verbose=true puts the kernel's reasons in dmesg. The map type comes from a
 * kretprobe that /init sets beforehand: one event per call, in the same order
 * as the lines printed here.
 *
 * A provider is a function whose pdev->p2pdma is set (pci_p2pdma_add_resource()
 * ran: the NVMe driver registered its CMB). pci_has_p2pmem() would say
 * "published" too, but it is static from 7.2 on (7.2.13 drivers/pci/p2pdma.c),
 * so the module reads the field itself; the NVMe driver publishes every CMB it
 * registers.
 *
 * No module parameters: param_ops_bool is not exported by the tiny oracle
 * config (qemu-kernel-oracle.md).
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/rcupdate.h>

static int __init p2pdist_init(void)
{
	struct pci_dev *provider = NULL, *client;

	while ((provider = pci_get_device(PCI_ANY_ID, PCI_ANY_ID, provider))) {
		if (!rcu_access_pointer(provider->p2pdma))
			continue;
		client = NULL;
		while ((client = pci_get_device(PCI_ANY_ID, PCI_ANY_ID, client))) {
			int dist = pci_p2pdma_distance(provider, &client->dev, true);

			pr_info("p2pdist: %s %s %d\n", pci_name(provider), pci_name(client), dist);
		}
	}
	pr_info("p2pdist: done\n");
	return 0;
}

static void __exit p2pdist_exit(void)
{
}

module_init(p2pdist_init);
module_exit(p2pdist_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("p2pview verify: the kernel's P2PDMA distance for every pair");
