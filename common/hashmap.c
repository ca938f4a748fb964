/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "hashmap.h"

static size_t slot_of(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

void *hashmap_get(const struct hashmap *h, uint64_t key)
{
	if (!h->cap)
		return NULL;
	for (size_t i = slot_of(key, h->cap);; i = (i + 1) & (h->cap - 1)) {
		if (!h->slots[i].value)
			return NULL;
		if (h->slots[i].key == key)
			return h->slots[i].value;
	}
}

static int grow(struct hashmap *h)
{
	size_t cap = h->cap ? h->cap * 2 : 16;
	struct hashmap_entry *old = h->slots, *slots = calloc(cap, sizeof(*slots));
	size_t old_cap = h->cap;

	if (!slots)
		return -ENOMEM;
	h->slots = slots;
	h->cap = cap;
	h->len = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].value)
			hashmap_put(h, old[i].key, old[i].value);
	free(old);
	return 0;
}

int hashmap_put(struct hashmap *h, uint64_t key, void *value)
{
	if ((h->len + 1) * 4 > h->cap * 3) {
		int r = grow(h);
		if (r < 0)
			return r;
	}
	for (size_t i = slot_of(key, h->cap);; i = (i + 1) & (h->cap - 1)) {
		if (!h->slots[i].value) {
			h->slots[i] = (struct hashmap_entry){ key, value };
			h->len++;
			return 0;
		}
		if (h->slots[i].key == key) {
			h->slots[i].value = value;
			return 0;
		}
	}
}

void *hashmap_remove(struct hashmap *h, uint64_t key)
{
	size_t i, j;
	void *v;

	if (!h->cap)
		return NULL;
	for (i = slot_of(key, h->cap);; i = (i + 1) & (h->cap - 1)) {
		if (!h->slots[i].value)
			return NULL;
		if (h->slots[i].key == key)
			break;
	}
	v = h->slots[i].value;
	h->slots[i].value = NULL;
	h->len--;
	/* Backward-shift the cluster after i so lookups need no tombstones. */
	for (j = (i + 1) & (h->cap - 1); h->slots[j].value; j = (j + 1) & (h->cap - 1)) {
		size_t home = slot_of(h->slots[j].key, h->cap);
		/* Move j to i when home is not cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			h->slots[i] = h->slots[j];
			h->slots[j].value = NULL;
			i = j;
		}
	}
	return v;
}

void hashmap_clear(struct hashmap *h)
{
	free(h->slots);
	*h = (struct hashmap){ 0 };
}

bool hashmap_next(const struct hashmap *h, size_t *i, uint64_t *key, void **value)
{
	for (; *i < h->cap; (*i)++) {
		if (h->slots[*i].value) {
			if (key)
				*key = h->slots[*i].key;
			if (value)
				*value = h->slots[*i].value;
			(*i)++;
			return true;
		}
	}
	return false;
}
