/*
 * replay.c: runs a fuzz target over every file of its corpus directory,
 * so ctest checks with gcc what libFuzzer found with clang.  Exit 0 when
 * every input ran (the target aborts on a broken invariant), 1 when the
 * corpus cannot be read or is empty.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
replay_file(const char *path)
{
	FILE		*f;
	uint8_t		*buf;
	long		 len;

	if ((f = fopen(path, "rb")) == NULL)
		return (-1);
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return (-1);
	}
	if ((buf = malloc(len > 0 ? (size_t)len : 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return (-1);
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return (0);
}

int
main(int argc, char **argv)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		 path[4096];
	int		 i, n = 0;

	for (i = 1; i < argc; i++) {
		if ((d = opendir(argv[i])) == NULL) {
			if (replay_file(argv[i]) != 0) {
				perror(argv[i]);
				return (1);
			}
			n++;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
				continue;
			if (replay_file(path) != 0) {
				perror(path);
				closedir(d);
				return (1);
			}
			n++;
		}
		closedir(d);
	}
	printf("replayed %d input(s)\n", n);
	return (n > 0 ? 0 : 1);
}
