/*
 * core/keys.c - Ed25519 keys on disk, their OpenSSH encodings, and SSHSIG
 * signatures byte-compatible with `ssh-keygen -Y sign`, so stock git with
 * gpg.format=ssh verifies what sluice signs.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAGIC "sluice-ed25519-secret-v1\n"
#define KEY_TYPE "ssh-ed25519"
#define SSHSIG_MAGIC "SSHSIG"
#define SSHSIG_VERSION 1
#define SSHSIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define SSHSIG_END "-----END SSH SIGNATURE-----"
/* ssh-keygen wraps the armour's base64 at 70 columns (sshbuf_dtob64). */
#define SSHSIG_WRAP 70
/* Far above any Ed25519 SSHSIG (232 base64 characters); bounds the work. */
#define SSHSIG_ARMOR_MAX 16384
/* The key file is the magic line and 44 base64 characters plus a newline. */
#define KEY_FILE_MAX 256
/* string("ssh-ed25519") string(pk) */
#define PUB_BLOB_LEN (4 + 11 + 4 + 32)

void sluice_key__dispose(sluice_key *k)
{
	if (!k)
		return;
	sodium_memzero(k->sk, sizeof(k->sk));
	k->has_secret = 0;
}

int sluice_keys__check_name(sluice_ctx *ctx, const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > SLUICE_KEY_NAME_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "key name '%s' must be 1 to %d characters long", name,
		                         SLUICE_KEY_NAME_MAX);
	if (name[0] == '.' || name[0] == '-')
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "key name '%s' must not start with '.' or '-'", name);
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return sluice_ctx__error(ctx, SLUICE_EINVALID,
			                         "key name '%s' has character 0x%02x at %zu; "
			                         "allowed are A-Z a-z 0-9 . _ -",
			                         name, (unsigned)(unsigned char)c, i);
	}
	return SLUICE_OK;
}

int sluice_keys__dir(sluice_ctx *ctx, char *out, size_t outlen)
{
	const char *env = getenv("SLUICE_KEYS");
	int n;

	if (env && *env)
		n = snprintf(out, outlen, "%s", env);
	else if ((env = getenv("XDG_CONFIG_HOME")) && *env)
		n = snprintf(out, outlen, "%s/sluice/keys", env);
	else if ((env = getenv("HOME")) && *env)
		n = snprintf(out, outlen, "%s/.config/sluice/keys", env);
	else
		return sluice_ctx__error(
		        ctx, SLUICE_EINVALID,
		        "cannot locate the keys directory: set SLUICE_KEYS or HOME");
	if (n < 0 || (size_t)n >= outlen)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "keys directory path too long: %s",
		                         env);
	return SLUICE_OK;
}

/* dir/NAME.ext, for a name already checked. */
static int key_path(sluice_ctx *ctx, char *out, size_t outlen, const char *name, const char *ext)
{
	char dir[PATH_MAX];
	int error, n;

	if ((error = sluice_keys__check_name(ctx, name)) < 0 ||
	    (error = sluice_keys__dir(ctx, dir, sizeof(dir))) < 0)
		return error;
	n = snprintf(out, outlen, "%s/%s.%s", dir, name, ext);
	if (n < 0 || (size_t)n >= outlen)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "key path too long: %s/%s.%s", dir,
		                         name, ext);
	return SLUICE_OK;
}

/* ---- SSH wire encoding -------------------------------------------------- */

static int put_string(sluice_ctx *ctx, sluice_buf *b, const void *data, size_t len)
{
	unsigned char n[4];
	int error;

	if (len > UINT32_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "SSH string too long (%zu bytes)",
		                         len);
	sluice__stbe32(n, (uint32_t)len);
	if ((error = sluice_buf__put(ctx, b, n, 4)) < 0)
		return error;
	return sluice_buf__put(ctx, b, data, len);
}

static int put_cstring(sluice_ctx *ctx, sluice_buf *b, const char *s)
{
	return put_string(ctx, b, s, strlen(s));
}

static void pub_blob_raw(unsigned char out[PUB_BLOB_LEN], const unsigned char pk[32])
{
	sluice__stbe32(out, 11);
	memcpy(out + 4, KEY_TYPE, 11);
	sluice__stbe32(out + 15, 32);
	memcpy(out + 19, pk, 32);
}

int sluice_keys__pub_blob(sluice_ctx *ctx, const unsigned char pk[32], sluice_buf *out)
{
	unsigned char blob[PUB_BLOB_LEN];

	pub_blob_raw(blob, pk);
	return sluice_buf__put(ctx, out, blob, sizeof(blob));
}

/* A reader over untrusted wire bytes: every length is checked against what is left. */
typedef struct {
	const unsigned char *p;
	size_t left;
} reader;

static int get_string(reader *r, const unsigned char **data, size_t *len)
{
	uint32_t n;

	if (r->left < 4)
		return -1;
	n = sluice__be32(r->p);
	if (n > r->left - 4)
		return -1;
	*data = r->p + 4;
	*len = n;
	r->p += 4 + (size_t)n;
	r->left -= 4 + (size_t)n;
	return 0;
}

static bool str_eq(const unsigned char *data, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(data, s, len) == 0;
}

/* Parse string("ssh-ed25519") string(32 bytes), exactly, from data. */
static int parse_pub_blob(const unsigned char *data, size_t len, unsigned char pk[32],
                          const char **why)
{
	reader r = {data, len};
	const unsigned char *s;
	size_t n;

	if (get_string(&r, &s, &n) < 0) {
		*why = "truncated key type";
		return -1;
	}
	if (!str_eq(s, n, KEY_TYPE)) {
		*why = "key type is not ssh-ed25519";
		return -1;
	}
	if (get_string(&r, &s, &n) < 0 || n != 32) {
		*why = "Ed25519 public key is not 32 bytes";
		return -1;
	}
	if (r.left != 0) {
		*why = "trailing bytes after the public key";
		return -1;
	}
	memcpy(pk, s, 32);
	return 0;
}

void sluice_keys__fingerprint(char out[SLUICE_FP_LEN], const unsigned char pk[32])
{
	unsigned char blob[PUB_BLOB_LEN], h[crypto_hash_sha256_BYTES];

	pub_blob_raw(blob, pk);
	crypto_hash_sha256(h, blob, sizeof(blob));
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, SLUICE_FP_LEN - 7, h, sizeof(h),
	                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* Append standard padded base64 of data to b. */
static int put_base64(sluice_ctx *ctx, sluice_buf *b, const unsigned char *data, size_t len)
{
	size_t enc;
	int error;

	if (len > (SIZE_MAX - 8) / 4 * 3)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "data too large to encode");
	enc = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	if ((error = sluice_buf__grow(ctx, b, enc)) < 0)
		return error;
	sodium_bin2base64((char *)b->ptr + b->len, enc, data, len, sodium_base64_VARIANT_ORIGINAL);
	b->len += enc - 1;
	return SLUICE_OK;
}

static bool comment_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			return false;
	return true;
}

int sluice_keys__openssh_pub(sluice_ctx *ctx, const unsigned char pk[32], const char *comment,
                             sluice_buf *out)
{
	unsigned char blob[PUB_BLOB_LEN];
	int error;

	if (comment && !comment_ok(comment))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "public key comment must not contain a line break");
	pub_blob_raw(blob, pk);
	if ((error = sluice_buf__puts(ctx, out, KEY_TYPE " ")) < 0 ||
	    (error = put_base64(ctx, out, blob, sizeof(blob))) < 0)
		return error;
	if (comment && *comment)
		return sluice_buf__printf(ctx, out, " %s", comment);
	return SLUICE_OK;
}

int sluice_keys__parse_openssh_pub(sluice_ctx *ctx, unsigned char pk[32], const char *line,
                                   size_t len)
{
	static const char prefix[] = KEY_TYPE " ";
	unsigned char blob[128];
	const char *b64, *end;
	const char *why;
	size_t bloblen, n;

	/* A trailing newline is how .pub files end; it is not part of the key. */
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (memchr(line, '\0', len) || memchr(line, '\n', len))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "public key must be a single line of text");
	if (len < sizeof(prefix) - 1 || memcmp(line, prefix, sizeof(prefix) - 1) != 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "public key does not start with 'ssh-ed25519 '");
	b64 = line + sizeof(prefix) - 1;
	end = memchr(b64, ' ', len - (size_t)(b64 - line));
	n = end ? (size_t)(end - b64) : len - (size_t)(b64 - line);
	if (n == 0 || sodium_base642bin(blob, sizeof(blob), b64, n, NULL, &bloblen, NULL,
	                                sodium_base64_VARIANT_ORIGINAL) != 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "public key's base64 is malformed");
	if (parse_pub_blob(blob, bloblen, pk, &why) < 0)
		return sluice_ctx__error(ctx, SLUICE_EINVALID, "public key blob: %s", why);
	return SLUICE_OK;
}

int sluice_keys__allowed_signers(sluice_ctx *ctx, const char *principal, const unsigned char pk[32],
                                 sluice_buf *out)
{
	const char *s;
	int error;

	if (!*principal)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "allowed signers principal is empty");
	/*
	 * ssh-keygen reads the principal field as a comma-separated list of
	 * patterns; refuse anything that would be read as more than one name.
	 */
	for (s = principal; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == 0x7f || c == ',' || c == '"' || c == '*' || c == '?' ||
		    c == '!')
			return sluice_ctx__error(
			        ctx, SLUICE_EINVALID,
			        "allowed signers principal '%s' contains character "
			        "0x%02x (no whitespace, control, quote, comma or "
			        "pattern characters)",
			        principal, (unsigned)c);
	}
	if ((error = sluice_buf__printf(ctx, out, "%s namespaces=\"git\" ", principal)) < 0 ||
	    (error = sluice_keys__openssh_pub(ctx, pk, NULL, out)) < 0)
		return error;
	return sluice_buf__puts(ctx, out, "\n");
}

/* ---- key files ---------------------------------------------------------- */

static int write_key_file(sluice_ctx *ctx, const char *path, const unsigned char seed[32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char text[sizeof(KEY_MAGIC) + sizeof(b64) + 1];
	int fd, n, error;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return sluice_ctx__error(ctx, SLUICE_EEXISTS, "key file %s already exists",
			                         path);
		return sluice_ctx__oserror(ctx, "cannot create key file %s", path);
	}
	sodium_bin2base64(b64, sizeof(b64), seed, 32, sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(text, sizeof(text), "%s%s\n", KEY_MAGIC, b64);
	if ((error = sluice_io__write_all(ctx, fd, text, (size_t)n, path)) >= 0)
		error = sluice_io__fsync(ctx, fd, path);
	close(fd);
	if (error < 0)
		unlink(path);
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(text, sizeof(text));
	return error;
}

int sluice_keys__generate(sluice_ctx *ctx, sluice_key *out, const char *name)
{
	char dir[PATH_MAX], keypath[PATH_MAX], pubpath[PATH_MAX];
	unsigned char seed[32];
	sluice_key k = {0};
	sluice_buf pub = {0};
	int error;

	if ((error = key_path(ctx, keypath, sizeof(keypath), name, "key")) < 0 ||
	    (error = key_path(ctx, pubpath, sizeof(pubpath), name, "pub")) < 0 ||
	    (error = sluice_keys__dir(ctx, dir, sizeof(dir))) < 0 ||
	    (error = sluice_io__mkdirs(ctx, dir, 0700)) < 0)
		goto done;
	randombytes_buf(seed, sizeof(seed));
	crypto_sign_seed_keypair(k.pk, k.sk, seed);
	k.has_secret = 1;
	snprintf(k.name, sizeof(k.name), "%s", name);
	if ((error = write_key_file(ctx, keypath, seed)) < 0)
		goto done;
	if ((error = sluice_keys__openssh_pub(ctx, k.pk, name, &pub)) < 0 ||
	    (error = sluice_buf__puts(ctx, &pub, "\n")) < 0 ||
	    (error = sluice_io__write_file_atomic(ctx, pubpath, pub.ptr, pub.len, 0644)) < 0) {
		/* Without its .pub the key is half made; remove it so a retry can succeed. */
		unlink(keypath);
		goto done;
	}
	if ((error = sluice_io__fsync_dir(ctx, dir)) < 0)
		goto done;
	*out = k;
done:
	sodium_memzero(seed, sizeof(seed));
	sluice_key__dispose(&k);
	sluice_buf__dispose(&pub);
	return error;
}

static int parse_key_file(sluice_ctx *ctx, sluice_key *k, const char *path,
                          const unsigned char *text, size_t len)
{
	const size_t magic = sizeof(KEY_MAGIC) - 1;
	unsigned char seed[32];
	size_t seedlen = 0;
	const char *end;
	int error = SLUICE_OK;

	if (len < magic || memcmp(text, KEY_MAGIC, magic) != 0)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "key file %s does not start with '%.*s'", path,
		                         (int)magic - 1, KEY_MAGIC);
	text += magic;
	len -= magic;
	if (len == 0 || text[len - 1] != '\n' ||
	    (end = memchr(text, '\n', len)) != (const char *)text + len - 1)
		return sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                         "key file %s: expected one base64 line after the header",
		                         path);
	if (sodium_base642bin(seed, sizeof(seed), (const char *)text, len - 1, NULL, &seedlen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    seedlen != sizeof(seed)) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "key file %s: the seed is not 32 bytes of base64", path);
		goto done;
	}
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	k->has_secret = 1;
done:
	sodium_memzero(seed, sizeof(seed));
	return error;
}

int sluice_keys__load(sluice_ctx *ctx, sluice_key *out, const char *name)
{
	char path[PATH_MAX];
	unsigned char text[KEY_FILE_MAX + 1];
	sluice_key k = {0};
	struct stat st;
	ssize_t n = 0;
	size_t len = 0;
	int fd = -1, error;

	if ((error = key_path(ctx, path, sizeof(path), name, "key")) < 0)
		return error;
	/* O_NONBLOCK so a FIFO planted in place of the key cannot hang us. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return sluice_ctx__error(ctx, SLUICE_ENOTFOUND,
			                         "key file %s does not exist", path);
		if (errno == ELOOP)
			return sluice_ctx__error(
			        ctx, SLUICE_EDENIED,
			        "key file %s is a symbolic link; refusing to follow it", path);
		return sluice_ctx__oserror(ctx, "cannot open key file %s", path);
	}
	if (fstat(fd, &st) < 0) {
		error = sluice_ctx__oserror(ctx, "cannot stat key file %s", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED, "key file %s is not a regular file",
		                          path);
		goto done;
	}
	if (st.st_mode & 077) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "key file %s has mode %04o; it must not be readable or "
		                          "writable by group or others (chmod 600)",
		                          path, (unsigned)(st.st_mode & 07777));
		goto done;
	}
	if (st.st_uid != geteuid()) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "key file %s is owned by uid %lu, not by this user", path,
		                          (unsigned long)st.st_uid);
		goto done;
	}
	while (len < sizeof(text)) {
		n = read(fd, text + len, sizeof(text) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (n < 0) {
		error = sluice_ctx__oserror(ctx, "cannot read key file %s", path);
		goto done;
	}
	if (len > KEY_FILE_MAX) {
		error = sluice_ctx__error(ctx, SLUICE_ECORRUPT,
		                          "key file %s is larger than %d bytes", path,
		                          KEY_FILE_MAX);
		goto done;
	}
	if ((error = parse_key_file(ctx, &k, path, text, len)) < 0)
		goto done;
	snprintf(k.name, sizeof(k.name), "%s", name);
	*out = k;
done:
	sodium_memzero(text, sizeof(text));
	sluice_key__dispose(&k);
	close(fd);
	return error;
}

/* ---- SSHSIG ------------------------------------------------------------- */

/* The bytes an SSHSIG signature covers (PROTOCOL.sshsig "Signed Data"). */
static int signed_data(sluice_ctx *ctx, sluice_buf *out, const char *ns, const char *hashalg,
                       const unsigned char *hash, size_t hashlen)
{
	int error;

	if ((error = sluice_buf__put(ctx, out, SSHSIG_MAGIC, 6)) < 0 ||
	    (error = put_cstring(ctx, out, ns)) < 0 || (error = put_cstring(ctx, out, "")) < 0 ||
	    (error = put_cstring(ctx, out, hashalg)) < 0 ||
	    (error = put_string(ctx, out, hash, hashlen)) < 0)
		return error;
	return SLUICE_OK;
}

int sluice_sshsig__sign(sluice_ctx *ctx, const sluice_key *key, const char *ns, const void *msg,
                        size_t len, sluice_buf *out)
{
	unsigned char hash[crypto_hash_sha512_BYTES], sig[crypto_sign_BYTES];
	unsigned char pub[PUB_BLOB_LEN];
	sluice_buf data = {0}, blob = {0}, sigblob = {0}, b64 = {0};
	size_t i;
	int error;

	if (!key->has_secret)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "key '%s' has no secret half to sign with", key->name);
	if (!*ns)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "SSHSIG namespace must not be empty");
	crypto_hash_sha512(hash, msg, len);
	if ((error = signed_data(ctx, &data, ns, "sha512", hash, sizeof(hash))) < 0)
		goto done;
	crypto_sign_detached(sig, NULL, data.ptr, data.len, key->sk);
	pub_blob_raw(pub, key->pk);
	if ((error = put_cstring(ctx, &sigblob, KEY_TYPE)) < 0 ||
	    (error = put_string(ctx, &sigblob, sig, sizeof(sig))) < 0)
		goto done;
	{
		unsigned char ver[4];
		sluice__stbe32(ver, SSHSIG_VERSION);
		if ((error = sluice_buf__put(ctx, &blob, SSHSIG_MAGIC, 6)) < 0 ||
		    (error = sluice_buf__put(ctx, &blob, ver, 4)) < 0 ||
		    (error = put_string(ctx, &blob, pub, sizeof(pub))) < 0 ||
		    (error = put_cstring(ctx, &blob, ns)) < 0 ||
		    (error = put_cstring(ctx, &blob, "")) < 0 ||
		    (error = put_cstring(ctx, &blob, "sha512")) < 0 ||
		    (error = put_string(ctx, &blob, sigblob.ptr, sigblob.len)) < 0)
			goto done;
	}
	if ((error = put_base64(ctx, &b64, blob.ptr, blob.len)) < 0 ||
	    (error = sluice_buf__puts(ctx, out, SSHSIG_BEGIN "\n")) < 0)
		goto done;
	for (i = 0; i < b64.len; i += SSHSIG_WRAP) {
		size_t n = b64.len - i < SSHSIG_WRAP ? b64.len - i : SSHSIG_WRAP;
		if ((error = sluice_buf__put(ctx, out, b64.ptr + i, n)) < 0 ||
		    (error = sluice_buf__puts(ctx, out, "\n")) < 0)
			goto done;
	}
	error = sluice_buf__puts(ctx, out, SSHSIG_END "\n");
done:
	sluice_buf__dispose(&data);
	sluice_buf__dispose(&blob);
	sluice_buf__dispose(&sigblob);
	sluice_buf__dispose(&b64);
	return error;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Strip the armour and decode the base64 between BEGIN and END lines. */
static int dearmor(sluice_ctx *ctx, unsigned char **out, size_t *outlen, const char *text,
                   size_t len)
{
	const size_t blen = sizeof(SSHSIG_BEGIN) - 1, elen = sizeof(SSHSIG_END) - 1;
	const char *body, *end;
	unsigned char *bin;
	size_t bodylen, binlen;

	if (len > SSHSIG_ARMOR_MAX)
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "SSH signature is too long (%zu bytes, limit %d)", len,
		                         SSHSIG_ARMOR_MAX);
	/* git hands over the gpgsig header with or without its final newline. */
	while (len > 0 && is_space(text[len - 1]))
		len--;
	if (len < blen + 1 + elen || memcmp(text, SSHSIG_BEGIN, blen) != 0 ||
	    (text[blen] != '\n' && text[blen] != '\r'))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "not an SSH signature: missing '" SSHSIG_BEGIN "' line");
	end = text + len - elen;
	if (memcmp(end, SSHSIG_END, elen) != 0 || (end[-1] != '\n'))
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "not an SSH signature: missing '" SSHSIG_END "' line");
	body = text + blen;
	bodylen = (size_t)(end - body);
	if (!(bin = sluice__malloc(ctx, bodylen / 4 * 3 + 3)))
		return SLUICE_ENOMEM;
	if (sodium_base642bin(bin, bodylen / 4 * 3 + 3, body, bodylen, "\r\n", &binlen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bin);
		return sluice_ctx__error(ctx, SLUICE_EINVALID,
		                         "SSH signature's base64 body is malformed");
	}
	*out = bin;
	*outlen = binlen;
	return SLUICE_OK;
}

int sluice_sshsig__verify(sluice_ctx *ctx, unsigned char signer[32], const char *armored,
                          size_t armored_len, const char *ns, const void *msg, size_t len)
{
	unsigned char *bin = NULL;
	unsigned char hash[crypto_hash_sha512_BYTES], pk[32];
	const unsigned char *s, *keyblob, *sns, *hashalg, *sigblob, *sig;
	size_t binlen = 0, n, keylen, nslen, hashlen, sigbloblen, siglen;
	sluice_buf data = {0};
	const char *why = NULL, *alg;
	reader r, sr;
	int error;

	if ((error = dearmor(ctx, &bin, &binlen, armored, armored_len)) < 0)
		return error;
	r.p = bin;
	r.left = binlen;
	if (r.left < 10 || memcmp(r.p, SSHSIG_MAGIC, 6) != 0) {
		why = "missing SSHSIG magic";
		goto invalid;
	}
	if (sluice__be32(r.p + 6) != SSHSIG_VERSION) {
		error = sluice_ctx__error(ctx, SLUICE_EINVALID,
		                          "SSH signature has version %lu, not 1",
		                          (unsigned long)sluice__be32(r.p + 6));
		goto done;
	}
	r.p += 10;
	r.left -= 10;
	if (get_string(&r, &keyblob, &keylen) < 0) {
		why = "truncated public key";
		goto invalid;
	}
	if (parse_pub_blob(keyblob, keylen, pk, &why) < 0)
		goto invalid;
	if (get_string(&r, &sns, &nslen) < 0) {
		why = "truncated namespace";
		goto invalid;
	}
	if (get_string(&r, &s, &n) < 0) {
		why = "truncated reserved field";
		goto invalid;
	}
	/* PROTOCOL.sshsig: verifiers must ignore the reserved field's contents. */
	if (get_string(&r, &hashalg, &hashlen) < 0) {
		why = "truncated hash algorithm";
		goto invalid;
	}
	if (str_eq(hashalg, hashlen, "sha512")) {
		alg = "sha512";
		crypto_hash_sha512(hash, msg, len);
		hashlen = crypto_hash_sha512_BYTES;
	} else if (str_eq(hashalg, hashlen, "sha256")) {
		alg = "sha256";
		crypto_hash_sha256(hash, msg, len);
		hashlen = crypto_hash_sha256_BYTES;
	} else {
		why = "hash algorithm is neither sha512 nor sha256";
		goto invalid;
	}
	if (get_string(&r, &sigblob, &sigbloblen) < 0) {
		why = "truncated signature";
		goto invalid;
	}
	if (r.left != 0) {
		why = "trailing bytes after the signature";
		goto invalid;
	}
	sr.p = sigblob;
	sr.left = sigbloblen;
	if (get_string(&sr, &s, &n) < 0 || !str_eq(s, n, KEY_TYPE)) {
		why = "signature type is not ssh-ed25519";
		goto invalid;
	}
	if (get_string(&sr, &sig, &siglen) < 0 || siglen != crypto_sign_BYTES || sr.left != 0) {
		why = "Ed25519 signature is not exactly 64 bytes";
		goto invalid;
	}
	/* Only now, with the blob known well-formed, is a mismatch a refusal. */
	if (nslen != strlen(ns) || memcmp(sns, ns, nslen) != 0 || memchr(sns, '\0', nslen)) {
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "SSH signature is for namespace '%.*s', expected '%s'",
		                          (int)(nslen > 64 ? 64 : nslen), (const char *)sns, ns);
		goto done;
	}
	if ((error = signed_data(ctx, &data, ns, alg, hash, hashlen)) < 0)
		goto done;
	if (crypto_sign_verify_detached(sig, data.ptr, data.len, pk) != 0) {
		char fp[SLUICE_FP_LEN];
		sluice_keys__fingerprint(fp, pk);
		error = sluice_ctx__error(ctx, SLUICE_EDENIED,
		                          "SSH signature by %s does not verify over the message",
		                          fp);
		goto done;
	}
	memcpy(signer, pk, 32);
	error = SLUICE_OK;
	goto done;
invalid:
	error = sluice_ctx__error(ctx, SLUICE_EINVALID, "malformed SSH signature: %s", why);
done:
	free(bin);
	sluice_buf__dispose(&data);
	return error;
}
