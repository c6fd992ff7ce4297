/*
 * test_nouveau: an ordinary libdrm_nouveau program, written only against the public API of
 * Debian's libdrm-dev (nouveau.h, xf86drm.h, nouveau_drm.h), as any Linux client of the nouveau
 * DRM driver would be. Nothing in it knows about the hosted system: run it with the interposer
 * preloaded and it talks to an external client slot instead of a kernel.
 *
 *   test_nouveau                 open the device, read the chipset, create a VRAM|MAPPABLE BO,
 *                                map it, write a pattern, unmap, map again, check it; a second BO
 *                                does not alias the first; error paths (bad handle, closed BO,
 *                                unknown GETPARAM).
 *   test_nouveau --until-error S after the same set-up, prints "ready", then loops on BO
 *                                create/map/check until libdrm reports an error (the GPU server
 *                                was killed), then reopens the device until a BO round trip works
 *                                again; fails if no error shows up or recovery takes more than S
 *                                seconds.
 *
 * Each step prints a line; the last line is PASS or FAIL (exit status 0 or 1).
 * Environment: DRM_NODE (default /dev/dri/renderD128).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xf86drm.h>
#include <nouveau_drm.h>
#include <nouveau.h>
#include <nvif/class.h>
#include <nvif/cl0080.h>

#define BO_SIZE (64 * 1024)

static int failures;

static void check(int ok, const char *what, int err)
{
	if (ok) {
		printf("  ok    %s\n", what);
	} else {
		printf("  FAIL  %s (%s)\n", what, err ? strerror(err) : "wrong value");
		failures++;
	}
	fflush(stdout);
}

static void step(const char *what)
{
	printf("step: %s\n", what);
	fflush(stdout);
}

/* libdrm returns -errno; make that an errno for messages. */
static int err_of(int ret)
{
	return ret < 0 ? -ret : 0;
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	return (uint32_t)(i * 0x9e3779b9u) ^ seed;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct gpu {
	int fd;
	struct nouveau_drm *drm;
	struct nouveau_device *dev;
	struct nouveau_client *client;
};

/* Open the render node and the nouveau device on it; 0 or -errno. */
static int gpu_open(struct gpu *g, const char *node, int verbose)
{
	int ret;

	memset(g, 0, sizeof(*g));
	g->fd = open(node, O_RDWR | O_CLOEXEC);
	if (g->fd < 0)
		return -errno;
	ret = nouveau_drm_new(g->fd, &g->drm);
	if (ret)
		return ret;
	if (verbose)
		printf("  drm version %u.%u.%u, nvif %s\n", g->drm->version >> 24,
		       (g->drm->version >> 8) & 0xffff, g->drm->version & 0xff,
		       g->drm->nvif ? "yes" : "no");
	ret = nouveau_device_new(&g->drm->client, NV_DEVICE,
				 &(struct nv_device_v0){ .device = ~0ULL },
				 sizeof(struct nv_device_v0), &g->dev);
	if (ret)
		return ret;
	return nouveau_client_new(g->dev, &g->client);
}

/* gpu_open, checked and reported step by step; 0 or -errno. */
static int open_checked(struct gpu *g, const char *node)
{
	char msg[160];
	int ret = gpu_open(g, node, 1);

	check(ret == 0, "device opened", err_of(ret));
	if (ret)
		return ret;
	check(g->drm->nvif, "libdrm took the NVIF path", 0);
	snprintf(msg, sizeof(msg), "chipset 0x%x, VRAM %llu MiB", g->dev->chipset,
		 (unsigned long long)(g->dev->vram_size >> 20));
	check(g->dev->chipset != 0, msg, 0);
	return 0;
}

static void gpu_close(struct gpu *g)
{
	nouveau_client_del(&g->client);
	nouveau_device_del(&g->dev);
	nouveau_drm_del(&g->drm);
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

/* Create a VRAM|MAPPABLE BO, map it, fill it with `seed`'s pattern; 0 or -errno. */
static int bo_filled(struct gpu *g, uint32_t seed, struct nouveau_bo **pbo)
{
	uint32_t *p;
	size_t i;
	int ret;

	ret = nouveau_bo_new(g->dev, NOUVEAU_BO_VRAM | NOUVEAU_BO_MAP, 0, BO_SIZE, NULL, pbo);
	if (ret)
		return ret;
	ret = nouveau_bo_map(*pbo, NOUVEAU_BO_WR, g->client);
	if (ret)
		return ret;
	p = (*pbo)->map;
	for (i = 0; i < BO_SIZE / 4; i++)
		p[i] = pattern(seed, i);
	return 0;
}

/* Unmap, map again, and count the words that differ from `seed`'s pattern; -errno on error. */
static long bo_remap_check(struct gpu *g, struct nouveau_bo *bo, uint32_t seed)
{
	const uint32_t *p;
	long bad = 0;
	size_t i;
	int ret;

	if (bo->map) {
		munmap(bo->map, bo->size);
		bo->map = NULL;
	}
	ret = nouveau_bo_map(bo, NOUVEAU_BO_RD, g->client);
	if (ret)
		return ret;
	p = bo->map;
	for (i = 0; i < BO_SIZE / 4; i++)
		bad += p[i] != pattern(seed, i);
	return bad;
}

static int basic(const char *node)
{
	struct drm_nouveau_gem_info info;
	struct drm_gem_close gclose;
	struct nouveau_bo *a = NULL, *b = NULL, *wrapped = NULL;
	struct gpu g;
	uint32_t closed;
	uint64_t v;
	long bad;
	int ret;
	char msg[160];

	step("open the device (nouveau_drm_new + nouveau_device_new)");
	if (open_checked(&g, node))
		return 1;

	step("create a VRAM|MAPPABLE BO, map it, write a pattern");
	ret = bo_filled(&g, 0x5eed0001, &a);
	snprintf(msg, sizeof(msg), "BO handle %u, %llu bytes, mapped at %p", a ? a->handle : 0,
		 a ? (unsigned long long)a->size : 0ULL, a ? a->map : NULL);
	check(ret == 0, msg, err_of(ret));
	if (ret)
		goto out;

	step("unmap, map again, check the pattern");
	bad = bo_remap_check(&g, a, 0x5eed0001);
	snprintf(msg, sizeof(msg), "pattern intact after remapping (%ld words differ)", bad);
	check(bad == 0, msg, bad < 0 ? (int)-bad : 0);

	step("a second BO is separate memory");
	ret = bo_filled(&g, 0x5eed0002, &b);
	check(ret == 0, "second BO created and filled", err_of(ret));
	check(b && b->handle != a->handle, "it has its own handle", 0);
	bad = bo_remap_check(&g, a, 0x5eed0001);
	check(bad == 0, "first BO still holds its own pattern", bad < 0 ? (int)-bad : 0);

	step("error path: wrap a handle that does not exist");
	ret = nouveau_bo_wrap(g.dev, 0x7fff, &wrapped);
	snprintf(msg, sizeof(msg), "nouveau_bo_wrap(0x7fff) fails: %s", strerror(err_of(ret)));
	check(ret < 0, msg, 0);

	step("error path: use a closed BO");
	closed = b->handle;
	nouveau_bo_ref(NULL, &b);
	memset(&info, 0, sizeof(info));
	info.handle = closed;
	ret = drmCommandWriteRead(g.fd, DRM_NOUVEAU_GEM_INFO, &info, sizeof(info));
	snprintf(msg, sizeof(msg), "GEM_INFO on closed handle %u fails: %s", closed,
		 strerror(err_of(ret)));
	check(ret == -ENOENT, msg, 0);
	memset(&gclose, 0, sizeof(gclose));
	gclose.handle = closed;
	ret = drmIoctl(g.fd, DRM_IOCTL_GEM_CLOSE, &gclose);
	snprintf(msg, sizeof(msg), "GEM_CLOSE twice fails: %s", strerror(errno));
	check(ret == -1 && errno == EINVAL, msg, 0);

	step("error path: an unknown GETPARAM");
	ret = nouveau_getparam(g.dev, 0x7777, &v);
	snprintf(msg, sizeof(msg), "GETPARAM 0x7777 fails: %s", strerror(err_of(ret)));
	check(ret == -EINVAL, msg, 0);

out:
	nouveau_bo_ref(NULL, &a);
	nouveau_bo_ref(NULL, &b);
	gpu_close(&g);
	return failures != 0;
}

/* One BO round trip on an open device: 0, or -errno from the first libdrm call that failed. */
static int round_trip(struct gpu *g, uint32_t seed)
{
	struct nouveau_bo *bo = NULL;
	long bad;
	int ret;

	ret = bo_filled(g, seed, &bo);
	if (ret == 0) {
		bad = bo_remap_check(g, bo, seed);
		ret = bad < 0 ? (int)bad : (bad ? -EIO : 0);
	}
	nouveau_bo_ref(NULL, &bo);
	return ret;
}

static int until_error(const char *node, double limit_s)
{
	struct gpu g;
	double t0;
	uint32_t seed = 1;
	int ret, rounds = 0;
	char msg[160];

	step("open the device and do one BO round trip");
	if (open_checked(&g, node))
		return 1;
	ret = round_trip(&g, seed++);
	check(ret == 0, "BO round trip", err_of(ret));
	if (ret)
		return 1;

	printf("ready\n");
	fflush(stdout);
	step("loop on BO round trips until libdrm reports an error");
	t0 = now_s();
	while ((ret = round_trip(&g, seed++)) == 0 && now_s() - t0 < limit_s)
		rounds++;
	snprintf(msg, sizeof(msg), "libdrm reported an error after %d round trips: %s", rounds,
		 strerror(err_of(ret)));
	check(ret < 0, msg, 0);
	gpu_close(&g);
	if (ret == 0)
		return 1;

	step("reopen the device until a BO round trip works again");
	t0 = now_s();
	do {
		ret = gpu_open(&g, node, 0);
		if (ret == 0)
			ret = round_trip(&g, seed++);
		gpu_close(&g);
		if (ret)
			usleep(100 * 1000);
	} while (ret && now_s() - t0 < limit_s);
	snprintf(msg, sizeof(msg), "recovered after %.1f s", now_s() - t0);
	check(ret == 0, msg, err_of(ret));
	return failures != 0;
}

int main(int argc, char **argv)
{
	const char *node = getenv("DRM_NODE") ? getenv("DRM_NODE") : "/dev/dri/renderD128";
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--until-error") == 0)
		failed = until_error(node, atof(argv[2]));
	else if (argc == 1)
		failed = basic(node);
	else {
		fprintf(stderr, "usage: %s [--until-error SECONDS]\n", argv[0]);
		return 2;
	}
	printf("%s\n", failed ? "FAIL" : "PASS");
	return failed;
}
