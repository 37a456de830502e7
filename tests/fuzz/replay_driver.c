/*
 * tests/fuzz/replay_driver.c - runs a libFuzzer target's entry point on
 * every file of its seed corpus, so gcc builds and ctest exercise each
 * parser on the corpus without libFuzzer. Fails if the corpus is empty.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	struct dirent *de;
	unsigned count = 0;
	DIR *d;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	if (!(d = opendir(argv[1]))) {
		perror(argv[1]);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		FILE *f;
		uint8_t *buf;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (!(f = fopen(path, "rb")) || !(buf = malloc((size_t)st.st_size + 1))) {
			perror(path);
			return 1;
		}
		if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
			perror(path);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
		free(buf);
		count++;
	}
	closedir(d);
	printf("replayed %u inputs from %s\n", count, argv[1]);
	printf("%u passed, 0 failed\n", count);
	return count ? 0 : 1;
}
