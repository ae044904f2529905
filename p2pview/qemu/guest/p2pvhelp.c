/*
 * p2pvhelp: the guest half of `p2pview verify` (built static with gcc on the host).
 *
 *   p2pvhelp dio PROVIDER_SYSFS_DIR /dev/nvmeXnY
 *   p2pvhelp bar PROVIDER_SYSFS_DIR/resourceN /dev/nvmeXnY
 *   p2pvhelp acs DEVICE_SYSFS_DIR CTRL
 *   p2pvhelp capture FILES LINKS OUTDIR
 *
 * dio: mmaps 64 KiB of the provider's p2pmem/allocate (MAP_SHARED, offset 0:
 * the userspace P2PDMA interface, drivers/pci/p2pdma.c p2pmem_alloc_mmap,
 * v6.2+), then does an O_DIRECT pread of 4 KiB from the namespace into it and an
 * O_DIRECT pwrite of the same buffer back. Prints one line:
 *
 *   dio read=ok|EREMOTEIO|<ERRNO>|short<N>|<step>:<ERRNO> write=...
 *
 * (errno names as glibc's strerrorname_np() spells them). EREMOTEIO is what the
 * block layer returns when the NVMe's DMA mapping finds the pair
 * PCI_P2PDMA_MAP_NOT_SUPPORTED (shared/spec/qemu-kernel-oracle.md). Before v6.2
 * there is no allocate file: "open:ENOENT" for both.
 *
 * bar: the only other way user space reaches the same memory on every release:
 * mmap the BAR through sysfs (pci_mmap_resource_range(), VM_IO | VM_PFNMAP, the
 * last 64 KiB so that nothing the driver keeps at the start of the CMB is
 * touched) and try the same two O_DIRECT calls. GUP refuses such a mapping, so
 * the expected line is "bar read=EFAULT write=EFAULT".
 *
 * acs: write CTRL into the function's ACS Control register (the ACS extended
 * capability, ID 0x000d, found by walking the list from 0x100 in the sysfs config
 * file; Control is at +6) and read it back: "acs DEV cap 0xOFF ctrl 0xOLD -> 0xNEW".
 * For releases without pci=config_acs= (before v6.11); QEMU's write mask keeps
 * the bits the port's ACS Capability has.
 *
 * capture: copy every PCI function's sysfs directory the way p2pview's capture
 * layout keeps it: OUTDIR/sys/devices/... with the files named in FILES (one per
 * line; sub-directories such as p2pmem/ are made as needed) and the symlinks
 * named in LINKS, plus OUTDIR/sys/bus/pci/devices/BDF links. One process instead
 * of a shell loop forking cat and readlink tens of times per function, which
 * under TCG took seconds per machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_LEN (64 * 1024)
#define IO_LEN 4096

/* "EFAULT", "EREMOTEIO" ... (glibc 2.32+), or the number. */
static const char *errname(int err)
{
	static char buf[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "errno%d", err);
	return buf;
}

static const char *outcome(ssize_t n, int err)
{
	static char buf[32];

	if (n == IO_LEN)
		return "ok";
	if (n >= 0) {
		snprintf(buf, sizeof(buf), "short%zd", n);
		return buf;
	}
	return errname(err);
}

/* Both O_DIRECT calls between the namespace and buf; one line "KIND read=... write=...". */
static int transfer(const char *kind, void *buf, const char *disk)
{
	ssize_t n;
	int dfd, err;

	dfd = open(disk, O_RDWR | O_DIRECT);
	if (dfd < 0) {
		err = errno;
		printf("%s read=open:%s write=open:%s\n", kind, errname(err), errname(err));
		return 1;
	}
	n = pread(dfd, buf, IO_LEN, 0);
	err = errno;
	printf("%s read=%s", kind, outcome(n, err));
	n = pwrite(dfd, buf, IO_LEN, 0);
	err = errno;
	printf(" write=%s\n", outcome(n, err));
	close(dfd);
	return 0;
}

/* A setup step failed: the same error for both directions. */
static int setup_failed(const char *kind, const char *step)
{
	const char *name = errname(errno);

	printf("%s read=%s:%s write=%s:%s\n", kind, step, name, step, name);
	return 1;
}

static int dio(const char *provider, const char *disk)
{
	char path[512];
	void *buf;
	int afd, ret;

	snprintf(path, sizeof(path), "%s/p2pmem/allocate", provider);
	afd = open(path, O_RDWR);
	if (afd < 0)
		return setup_failed("dio", "open");
	buf = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, afd, 0);
	if (buf == MAP_FAILED)
		return setup_failed("dio", "mmap");
	ret = transfer("dio", buf, disk);
	munmap(buf, MAP_LEN);
	close(afd);
	return ret;
}

static int bar(const char *resource, const char *disk)
{
	struct stat st;
	void *buf;
	int rfd, ret;

	rfd = open(resource, O_RDWR);
	if (rfd < 0 || fstat(rfd, &st) < 0)
		return setup_failed("bar", "open");
	if (st.st_size < MAP_LEN) {
		errno = EINVAL;
		return setup_failed("bar", "size");
	}
	buf = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, st.st_size - MAP_LEN);
	if (buf == MAP_FAILED)
		return setup_failed("bar", "mmap");
	ret = transfer("bar", buf, disk);
	munmap(buf, MAP_LEN);
	close(rfd);
	return ret;
}

#define PCI_EXT_CAP_ID_ACS 0x000d
#define PCI_ACS_CTRL 6

static int acs(const char *dev, const char *value)
{
	unsigned char cfg[4096];
	char path[512];
	uint16_t old, ctrl, now;
	unsigned int pos = 0x100;
	int fd, ttl = 480;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/config", dev);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		printf("acs %s open:%s\n", dev, errname(errno));
		return 1;
	}
	n = pread(fd, cfg, sizeof(cfg), 0);
	if (n < (ssize_t)sizeof(cfg)) {
		printf("acs %s no extended config space (%zd bytes)\n", dev, n);
		return 1;
	}
	while (pos >= 0x100 && pos < sizeof(cfg) - 8 && ttl-- > 0) {
		uint32_t hdr = cfg[pos] | cfg[pos + 1] << 8 | cfg[pos + 2] << 16 |
			       (uint32_t)cfg[pos + 3] << 24;

		if ((hdr & 0xffff) == PCI_EXT_CAP_ID_ACS)
			break;
		pos = (hdr >> 20) & 0xffc;
	}
	if (pos < 0x100 || pos >= sizeof(cfg) - 8 || ttl <= 0) {
		printf("acs %s no ACS capability\n", dev);
		return 1;
	}
	old = cfg[pos + PCI_ACS_CTRL] | cfg[pos + PCI_ACS_CTRL + 1] << 8;
	ctrl = (uint16_t)strtoul(value, NULL, 0);
	if (pwrite(fd, &ctrl, 2, pos + PCI_ACS_CTRL) != 2 ||
	    pread(fd, &now, 2, pos + PCI_ACS_CTRL) != 2) {
		printf("acs %s write:%s\n", dev, errname(errno));
		return 1;
	}
	printf("acs %s cap %#x ctrl %#06x -> %#06x\n", dev, pos, old, now);
	close(fd);
	return 0;
}

#define MAX_NAMES 64

/* The names listed in a file, one per line; returns how many. */
static int read_names(const char *list, char names[][64])
{
	FILE *fh = fopen(list, "r");
	int n = 0;

	if (!fh)
		return 0;
	while (n < MAX_NAMES && fgets(names[n], 64, fh)) {
		names[n][strcspn(names[n], "\n")] = 0;
		if (names[n][0])
			n++;
	}
	fclose(fh);
	return n;
}

/* mkdir -p of the directory part of path (everything before the last '/'). */
static void make_parents(const char *path)
{
	char buf[PATH_MAX * 2];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(buf, 0755);
		*p = '/';
	}
}

static void copy_file(const char *src, const char *dst)
{
	char buf[8192];
	ssize_t n;
	int in, out;

	in = open(src, O_RDONLY);
	if (in < 0)
		return;
	make_parents(dst);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out >= 0) {
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, n) != n)
				break;
		close(out);
	}
	close(in);
}

static void copy_link(const char *src, const char *dst)
{
	char target[PATH_MAX];
	ssize_t n = readlink(src, target, sizeof(target) - 1);

	if (n < 0)
		return;
	target[n] = 0;
	make_parents(dst);
	if (symlink(target, dst) < 0)
		perror(dst);
}

static int capture(const char *files, const char *links, const char *out)
{
	static char fnames[MAX_NAMES][64], lnames[MAX_NAMES][64];
	int nf = read_names(files, fnames), nl = read_names(links, lnames);
	char link[PATH_MAX], real[PATH_MAX], src[PATH_MAX * 2], dst[PATH_MAX * 2];
	struct dirent *e;
	DIR *d;
	int i;

	d = opendir("/sys/bus/pci/devices");
	if (!d)
		return 1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", e->d_name);
		if (!realpath(link, real))
			continue;
		snprintf(dst, sizeof(dst), "%s/sys/bus/pci/devices/%s", out, e->d_name);
		copy_link(link, dst);
		snprintf(dst, sizeof(dst), "%s%s/", out, real);
		make_parents(dst);
		for (i = 0; i < nf; i++) {
			snprintf(src, sizeof(src), "%s/%s", real, fnames[i]);
			snprintf(dst, sizeof(dst), "%s%s/%s", out, real, fnames[i]);
			copy_file(src, dst);
		}
		for (i = 0; i < nl; i++) {
			snprintf(src, sizeof(src), "%s/%s", real, lnames[i]);
			snprintf(dst, sizeof(dst), "%s%s/%s", out, real, lnames[i]);
			copy_link(src, dst);
		}
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "dio") == 0)
		return dio(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "bar") == 0)
		return bar(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "acs") == 0)
		return acs(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "capture") == 0)
		return capture(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: p2pvhelp dio PROVIDER_SYSFS_DIR /dev/nvmeXnY\n"
		"       p2pvhelp bar PROVIDER_SYSFS_DIR/resourceN /dev/nvmeXnY\n"
		"       p2pvhelp acs DEVICE_SYSFS_DIR CTRL\n"
		"       p2pvhelp capture FILES LINKS OUTDIR\n");
	return 2;
}
