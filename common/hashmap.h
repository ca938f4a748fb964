/* SPDX-License-Identifier: MIT */
/* A small open-addressing hash map from uint64_t keys to pointers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hashmap_entry {
	uint64_t key;
	void *value;            /* NULL marks an empty slot */
};

struct hashmap {
	struct hashmap_entry *slots;
	size_t cap, len;        /* cap is 0 or a power of two */
};

/* Returns the value for key, or NULL. */
void *hashmap_get(const struct hashmap *h, uint64_t key);
/* Inserts or replaces; value must not be NULL. Returns 0 or -ENOMEM. */
int hashmap_put(struct hashmap *h, uint64_t key, void *value);
/* Removes key; returns its value or NULL. */
void *hashmap_remove(struct hashmap *h, uint64_t key);
void hashmap_clear(struct hashmap *h);
/* Iterate: for (size_t i = 0; hashmap_next(h, &i, &k, &v);) ... (no changes meanwhile) */
bool hashmap_next(const struct hashmap *h, size_t *i, uint64_t *key, void **value);
