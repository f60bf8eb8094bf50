/*
 * Runs a libFuzzer target over files without libFuzzer: every file named
 * on the command line (or found in a directory named there) is given to
 * LLVMFuzzerTestOneInput once.  `make unit` replays t/fuzz/<target>/ this
 * way, so every input kept there (seeds, and each crash ever found) is a
 * regression test of the plain and the ASan build.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
replay_file(const char *path)
{
    FILE     *f;
    long      len;
    uint8_t  *data;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return -1;
    }

    data = malloc(len ? len : 1);
    if (data == NULL || fread(data, 1, len, f) != (size_t) len) {
        free(data);
        fclose(f);
        return -1;
    }

    fclose(f);

    LLVMFuzzerTestOneInput(data, len);
    free(data);

    return 0;
}


int
main(int argc, char **argv)
{
    int             i, n;
    DIR            *dir;
    struct stat     st;
    struct dirent  *de;
    char            path[4096];

    n = 0;

    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }

        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0) {
                return 1;
            }

            n++;
            continue;
        }

        dir = opendir(argv[i]);
        if (dir == NULL) {
            perror(argv[i]);
            return 1;
        }

        while ((de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.') {
                continue;
            }

            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);

            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (replay_file(path) != 0) {
                    closedir(dir);
                    return 1;
                }

                n++;
            }
        }

        closedir(dir);
    }

    printf("ok - %d inputs replayed without a fault\n", n);

    return 0;
}
