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
 * io: one O_DIRECT scenario of `p2pview verify --io` (p2pview/qemu/iocheck.py):
 *
 *   p2pvhelp io NAME /dev/nvmeXnY read|write FILE_OFFSET SEGS IOVS SENT_BEFORE SENT_AFTER
 *
 * SEGS is a comma list of buffer segments mapped back to back at one reserved
 * address range: "p2p@BDF:SIZE" (an mmap of that provider's p2pmem/allocate,
 * MAP_SHARED, offset 0) or "ram:SIZE" (anonymous memory, written once so that
 * every page is present). IOVS is a comma list of "OFFSET+LENGTH" byte ranges
 * of that buffer: one is pread/pwrite, more are preadv/pwritev. Before and
 * after the call it reads 512 bytes at sector SENT_BEFORE and SENT_AFTER of
 * the same namespace (O_DIRECT, from a RAM buffer): the host finds those two
 * commands in QEMU's trace and gives the commands between them to this
 * scenario. The namespace's page cache is dropped first (POSIX_FADV_DONTNEED),
 * so that a buffered fallback reaches the controller. Prints, each line
 * starting "NAME ":
 *
 *   NAME seg K pfn 0xFIRST+COUNT,...      each segment's page frames (pagemap)
 *   NAME result BYTES | NAME result -1 ERRNO | NAME setup STEP ERRNO
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
#include <sys/uio.h>
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

#define MAX_SEGS 8
#define MAX_IOVS 64
#define SECTOR 512

/* "4096", "8K", "1M": a byte count (decimal, with an optional K or M). */
static long long parse_size(const char *s, char **end)
{
	long long v = strtoll(s, end, 0);

	if (**end == 'K') {
		v <<= 10;
		(*end)++;
	} else if (**end == 'M') {
		v <<= 20;
		(*end)++;
	}
	return v;
}

/* One 512-byte O_DIRECT read at SECTOR: a marker the host finds in QEMU's trace. */
static void sentinel(int fd, long long sector)
{
	static char *buf;

	if (!buf && posix_memalign((void **)&buf, 4096, 4096))
		return;
	if (pread(fd, buf, SECTOR, sector * SECTOR) != SECTOR)
		perror("sentinel");
}

/* The page frames of [addr, addr + len) as runs "0xFIRST+COUNT", from /proc/self/pagemap. */
static void print_pfns(const char *name, int index, char *addr, size_t len)
{
	uint64_t entry, run_first = 0, run_len = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	size_t off;
	int first = 1;

	printf("%s seg %d pfn ", name, index);
	for (off = 0; fd >= 0 && off < len; off += 4096) {
		uint64_t pfn;

		if (pread(fd, &entry, 8, ((uintptr_t)(addr + off) / 4096) * 8) != 8)
			break;
		pfn = (entry >> 63) ? (entry & ((1ULL << 55) - 1)) : 0;
		if (run_len && pfn && pfn == run_first + run_len) {
			run_len++;
			continue;
		}
		if (run_len)
			printf("%s%#llx+%llu", first ? "" : ",", (unsigned long long)run_first,
			       (unsigned long long)run_len), first = 0;
		run_first = pfn;
		run_len = 1;
	}
	if (run_len)
		printf("%s%#llx+%llu", first ? "" : ",", (unsigned long long)run_first,
		       (unsigned long long)run_len);
	printf("\n");
	if (fd >= 0)
		close(fd);
}

static int io(char **argv)
{
	const char *name = argv[0], *disk = argv[1], *op = argv[2];
	long long foff = strtoll(argv[3], NULL, 0);
	long long sent_before = strtoll(argv[6], NULL, 0), sent_after = strtoll(argv[7], NULL, 0);
	char segs[512], *seg_list[MAX_SEGS], *save, *tok, *end;
	long long seg_size[MAX_SEGS], total = 0;
	struct iovec iov[MAX_IOVS];
	int nseg = 0, niov = 0, dfd, i, write_op = strcmp(op, "write") == 0;
	char *base;
	ssize_t n;

	snprintf(segs, sizeof(segs), "%s", argv[4]);
	for (tok = strtok_r(segs, ",", &save); tok && nseg < MAX_SEGS;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');

		if (!colon)
			goto usage;
		*colon = 0;
		seg_list[nseg] = tok;
		seg_size[nseg] = parse_size(colon + 1, &end);
		if (seg_size[nseg] <= 0 || seg_size[nseg] % 4096)
			goto usage;
		total += seg_size[nseg++];
	}
	/* One reserved range, each segment mapped over its part with MAP_FIXED. */
	base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		printf("%s setup reserve %s\n", name, errname(errno));
		return 1;
	}
	for (i = 0, total = 0; i < nseg; total += seg_size[i++]) {
		char *at = base + total, path[512];
		void *got;

		if (strncmp(seg_list[i], "p2p@", 4) == 0) {
			int afd;

			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/p2pmem/allocate",
				 seg_list[i] + 4);
			afd = open(path, O_RDWR);
			if (afd < 0) {
				printf("%s setup open %s\n", name, errname(errno));
				return 1;
			}
			got = mmap(at, seg_size[i], PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				   afd, 0);
			close(afd);
		} else {
			got = mmap(at, seg_size[i], PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (got != MAP_FAILED)
				memset(got, 0x5a, seg_size[i]);
		}
		if (got == MAP_FAILED) {
			printf("%s setup mmap %s\n", name, errname(errno));
			return 1;
		}
	}
	for (i = 0, total = 0; i < nseg; total += seg_size[i++])
		print_pfns(name, i, base + total, seg_size[i]);
	snprintf(segs, sizeof(segs), "%s", argv[5]);
	for (tok = strtok_r(segs, ",", &save); tok && niov < MAX_IOVS;
	     tok = strtok_r(NULL, ",", &save)) {
		long long off = parse_size(tok, &end);

		if (*end != '+')
			goto usage;
		iov[niov].iov_base = base + off;
		iov[niov++].iov_len = parse_size(end + 1, &end);
	}
	dfd = open(disk, O_RDWR | O_DIRECT);
	if (dfd < 0) {
		printf("%s setup open %s\n", name, errname(errno));
		return 1;
	}
	/*
	 * An empty page cache for the namespace: what a scenario sends through it
	 * (the block device's buffered fallback) must reach the controller, whatever
	 * an earlier scenario left cached.
	 */
	posix_fadvise(dfd, 0, 0, POSIX_FADV_DONTNEED);
	sentinel(dfd, sent_before);
	if (niov == 1)
		n = write_op ? pwrite(dfd, iov[0].iov_base, iov[0].iov_len, foff)
			     : pread(dfd, iov[0].iov_base, iov[0].iov_len, foff);
	else
		n = write_op ? pwritev(dfd, iov, niov, foff) : preadv(dfd, iov, niov, foff);
	if (n < 0)
		printf("%s result -1 %s\n", name, errname(errno));
	else
		printf("%s result %zd\n", name, n);
	fflush(stdout);
	sentinel(dfd, sent_after);
	close(dfd);
	munmap(base, total);
	return 0;
usage:
	printf("%s setup usage EINVAL\n", name);
	return 2;
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
	if (argc == 10 && strcmp(argv[1], "io") == 0)
		return io(argv + 2);
	fprintf(stderr, "usage: p2pvhelp dio PROVIDER_SYSFS_DIR /dev/nvmeXnY\n"
		"       p2pvhelp bar PROVIDER_SYSFS_DIR/resourceN /dev/nvmeXnY\n"
		"       p2pvhelp acs DEVICE_SYSFS_DIR CTRL\n"
		"       p2pvhelp capture FILES LINKS OUTDIR\n"
		"       p2pvhelp io NAME DISK read|write OFFSET SEGS IOVS SENT_BEFORE SENT_AFTER\n");
	return 2;
}
