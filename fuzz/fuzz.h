/* Shared by the libFuzzer targets: a check that stops the run (kept in release builds). */
#pragma once

#include <stdlib.h>

#define CHECK(x)                                                                                   \
        do {                                                                                       \
                if (!(x))                                                                          \
                        abort();                                                                   \
        } while (0)
