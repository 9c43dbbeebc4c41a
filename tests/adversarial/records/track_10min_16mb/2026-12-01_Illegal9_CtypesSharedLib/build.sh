#!/bin/sh
gcc -O3 -shared -fPIC -o libpairs.so pairs.c -lm
