/*
 * p2pvhelp: the guest half of `p2pview verify` (built static with gcc on the host).
 *
 *   p2pvhelp dio PROVIDER_SYSFS_DIR /dev/nvmeXnY
 *
 * mmaps 64 KiB of the provider's p2pmem/allocate (MAP_SHARED, offset 0: the
 * userspace P2PDMA interface, drivers/pci/p2pdma.c p2pmem_alloc_mmap, v6.2+),
 * then does an O_DIRECT pread of 4 KiB from the namespace into it and an
 * O_DIRECT pwrite of the same buffer back. Prints one line:
 *
 *   dio read=ok|EREMOTEIO|<errno> write=ok|...
 *
 * EREMOTEIO (121) is what the block layer returns when the NVMe's DMA mapping
 * finds the pair PCI_P2PDMA_MAP_NOT_SUPPORTED (shared/spec/qemu-kernel-oracle.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAP_LEN (64 * 1024)
#define IO_LEN 4096

static const char *outcome(ssize_t n, int err)
{
	static char buf[32];

	if (n == IO_LEN)
		return "ok";
	if (n >= 0) {
		snprintf(buf, sizeof(buf), "short%zd", n);
		return buf;
	}
	if (err == EREMOTEIO)
		return "EREMOTEIO";
	snprintf(buf, sizeof(buf), "errno%d", err);
	return buf;
}

static int dio(const char *provider, const char *disk)
{
	char path[512];
	int afd, dfd;
	void *buf;
	ssize_t n;
	int err;

	snprintf(path, sizeof(path), "%s/p2pmem/allocate", provider);
	afd = open(path, O_RDWR);
	if (afd < 0) {
		printf("dio read=noalloc%d write=noalloc%d\n", errno, errno);
		return 1;
	}
	buf = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, afd, 0);
	if (buf == MAP_FAILED) {
		printf("dio read=nommap%d write=nommap%d\n", errno, errno);
		return 1;
	}
	dfd = open(disk, O_RDWR | O_DIRECT);
	if (dfd < 0) {
		printf("dio read=noopen%d write=noopen%d\n", errno, errno);
		return 1;
	}
	n = pread(dfd, buf, IO_LEN, 0);
	err = errno;
	printf("dio read=%s", outcome(n, err));
	n = pwrite(dfd, buf, IO_LEN, 0);
	err = errno;
	printf(" write=%s\n", outcome(n, err));
	close(dfd);
	munmap(buf, MAP_LEN);
	close(afd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "dio") == 0)
		return dio(argv[2], argv[3]);
	fprintf(stderr, "usage: p2pvhelp dio PROVIDER_SYSFS_DIR /dev/nvmeXnY\n");
	return 2;
}
