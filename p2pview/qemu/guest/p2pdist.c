// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * p2pdist: ask the running kernel for every (provider, client) verdict.
 *
 * For each function with p2pmem (pci_has_p2pmem) and every PCI function as the
 * client, calls pci_p2pdma_distance(provider, &client->dev, true): an inline in
 * include/linux/pci-p2pdma.h around the exported pci_p2pdma_distance_many(),
 * which runs calc_map_type_and_dist() once per call (drivers/pci/p2pdma.c,
 * v6.12) [read]. verbose=true puts the kernel's reasons in dmesg. The map type
 * comes from the kretprobe `r:p2pcalc calc_map_type_and_dist map=$retval` that
 * /init sets beforehand: one event per call, in the same order as the lines
 * printed here. No module parameters: param_ops_bool is not exported by the
 * tiny oracle config (qemu-kernel-oracle.md).
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>

static int __init p2pdist_init(void)
{
	struct pci_dev *provider = NULL, *client;

	while ((provider = pci_get_device(PCI_ANY_ID, PCI_ANY_ID, provider))) {
		if (!pci_has_p2pmem(provider))
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
