// SPDX-License-Identifier: MIT
/* SHA-256 (FIPS 180-4 examples) and HMAC-SHA256 (RFC 4231 test cases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "tap.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void check_sha(const void *data, size_t len, const char *want,
		      const char *name)
{
	uint8_t d[32];
	char got[65];

	vmig_sha256(data, len, d);
	hex(d, 32, got);
	is_str(got, want, "sha256 %s", name);
}

struct vec {
	const char *name;
	uint8_t key[131];
	size_t key_len;
	const char *data;
	size_t data_len;
	const char *mac;	/* hex, maybe truncated (case 5) */
};

int main(void)
{
	static struct vec v[7];
	uint8_t mac[32], *million;
	char got[65];
	struct vmig_hmac h;
	size_t i;

	check_sha("", 0,
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		  "empty");
	check_sha("abc", 3,
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		  "abc");
	check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
		  "two blocks (56 bytes)");
	million = malloc(1000000);
	memset(million, 'a', 1000000);
	check_sha(million, 1000000,
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		  "a million 'a'");
	{
		/* the same million bytes fed in odd-sized pieces */
		struct vmig_sha256 s;
		uint8_t d[32];
		size_t off = 0, step = 1;

		vmig_sha256_init(&s);
		while (off < 1000000) {
			size_t n = step < 1000000 - off ? step : 1000000 - off;

			vmig_sha256_update(&s, million + off, n);
			off += n;
			step = step * 3 % 127 + 1;
		}
		vmig_sha256_final(&s, d);
		hex(d, 32, got);
		is_str(got,
		       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
		       "sha256 incremental, odd pieces");
	}
	free(million);

	v[0] = (struct vec){ "1", { 0 }, 20, "Hi There", 8,
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" };
	memset(v[0].key, 0x0b, 20);
	v[1] = (struct vec){ "2", "Jefe", 4, "what do ya want for nothing?", 28,
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" };
	v[2] = (struct vec){ "3", { 0 }, 20, NULL, 50,
		"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" };
	memset(v[2].key, 0xaa, 20);
	v[3] = (struct vec){ "4", { 0 }, 25, NULL, 50,
		"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" };
	for (i = 0; i < 25; i++)
		v[3].key[i] = (uint8_t)(i + 1);
	v[4] = (struct vec){ "5 (truncated to 128 bits)", { 0 }, 20,
		"Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b" };
	memset(v[4].key, 0x0c, 20);
	v[5] = (struct vec){ "6 (key longer than a block)", { 0 }, 131,
		"Test Using Larger Than Block-Size Key - Hash Key First", 54,
		"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" };
	memset(v[5].key, 0xaa, 131);
	v[6] = (struct vec){ "7 (key and data longer than a block)", { 0 }, 131,
		"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
		152,
		"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" };
	memset(v[6].key, 0xaa, 131);

	for (i = 0; i < 7; i++) {
		uint8_t data[50];
		const void *d = v[i].data;

		if (!d) {
			memset(data, i == 2 ? 0xdd : 0xcd, sizeof(data));
			d = data;
		}
		vmig_hmac_sha256(v[i].key, v[i].key_len, d, v[i].data_len, mac);
		hex(mac, 32, got);
		got[strlen(v[i].mac)] = '\0';
		is_str(got, v[i].mac, "RFC 4231 test case %s", v[i].name);
	}

	/* incremental HMAC equals one-shot */
	vmig_hmac_init(&h, "Jefe", 4);
	vmig_hmac_update(&h, "what do ya ", 11);
	vmig_hmac_update(&h, "want for nothing?", 17);
	vmig_hmac_final(&h, mac);
	hex(mac, 32, got);
	is_str(got, v[1].mac, "HMAC incremental");

	ok(vmig_memeq_ct("abcd", "abcd", 4), "memeq_ct equal");
	ok(!vmig_memeq_ct("abcd", "abce", 4), "memeq_ct last byte differs");
	ok(!vmig_memeq_ct("xbcd", "abcd", 4), "memeq_ct first byte differs");
	ok(vmig_memeq_ct("a", "b", 0), "memeq_ct empty");
	return tap_done();
}
