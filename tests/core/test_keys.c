/*
 * tests/core/test_keys.c - key files, OpenSSH encodings and SSHSIG, checked
 * against the real ssh-keygen and git so sluice's signatures are the ones
 * stock tools accept.
 */
#include "testutil.h"

#include "keys.h"

#include <git2.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	sluice_ctx *ctx;
	char *dir;       /* scratch directory */
	char keys[1024]; /* short enough that key paths fit in PATH_MAX */
} fixture;

static int group_setup(void **state)
{
	(void)state;
	return sluice_global_init() < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sluice_global_shutdown();
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sluice_ctx_new(&f->ctx), 0);
	f->dir = tu_mkdtemp("keys");
	snprintf(f->keys, sizeof(f->keys), "%s/cfg/keys", f->dir);
	assert_int_equal(setenv("SLUICE_KEYS", f->keys, 1), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tu_rmtree(f->dir);
	free(f->dir);
	sluice_ctx_free(f->ctx);
	free(f);
	unsetenv("SLUICE_KEYS");
	return 0;
}

static void write_str(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	tu_write(path, data, len);
}

/* The environment for child git/ssh-keygen runs: no user or system config. */
static const char *const *child_env(const fixture *f)
{
	static char home[PATH_MAX + 8];
	static const char *env[4];

	snprintf(home, sizeof(home), "HOME=%s", f->dir);
	env[0] = home;
	env[1] = "GIT_CONFIG_NOSYSTEM=1";
	env[2] = "LC_ALL=C";
	env[3] = NULL;
	return env;
}

static void test_keys__generate_load_roundtrip(void **state)
{
	fixture *f = *state;
	sluice_key gen, loaded;
	sluice_buf line = {0};
	char path[PATH_MAX];
	unsigned char *text, pk[32];
	size_t len;
	struct stat st;

	assert_int_equal(sluice_keys__generate(f->ctx, &gen, "alice"), 0);
	assert_string_equal(gen.name, "alice");
	assert_true(gen.has_secret);
	assert_memory_equal(gen.sk + 32, gen.pk, 32);

	assert_int_equal(stat(f->keys, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/alice.key", f->keys);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	text = tu_read(path, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen("sluice-ed25519-secret-v1\n") + 44 + 1);
	assert_memory_equal(text, "sluice-ed25519-secret-v1\n", 25);
	free(text);

	assert_int_equal(sluice_keys__load(f->ctx, &loaded, "alice"), 0);
	assert_string_equal(loaded.name, "alice");
	assert_true(loaded.has_secret);
	assert_memory_equal(loaded.pk, gen.pk, 32);
	assert_memory_equal(loaded.sk, gen.sk, 64);

	/* NAME.pub is the OpenSSH line, commented with the name. */
	snprintf(path, sizeof(path), "%s/alice.pub", f->keys);
	text = tu_read(path, &len);
	assert_non_null(text);
	assert_int_equal(sluice_keys__openssh_pub(f->ctx, gen.pk, "alice", &line), 0);
	assert_int_equal(len, line.len + 1);
	assert_memory_equal(text, line.ptr, line.len);
	assert_int_equal(text[len - 1], '\n');
	assert_int_equal(strncmp((char *)text, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37), 0);
	assert_int_equal(sluice_keys__parse_openssh_pub(f->ctx, pk, (char *)text, len), 0);
	assert_memory_equal(pk, gen.pk, 32);
	free(text);

	sluice_key__dispose(&loaded);
	assert_false(loaded.has_secret);
	assert_true(sodium_is_zero(loaded.sk, sizeof(loaded.sk)));
	sluice_key__dispose(&gen);
	sluice_buf__dispose(&line);
}

static void test_keys__generate_twice_exists(void **state)
{
	fixture *f = *state;
	sluice_key k, k2;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "bob"), 0);
	assert_int_equal(sluice_keys__generate(f->ctx, &k2, "bob"), SLUICE_EEXISTS);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "bob.key"));
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "already exists"));
	sluice_key__dispose(&k);
}

static void test_keys__loose_permissions_refused(void **state)
{
	fixture *f = *state;
	static const mode_t modes[] = {0644, 0640, 0604, 0602, 0620, 0601, 0610};
	char path[PATH_MAX], want[32];
	sluice_key k;
	size_t i;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "carol"), 0);
	sluice_key__dispose(&k);
	snprintf(path, sizeof(path), "%s/carol.key", f->keys);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		assert_int_equal(sluice_keys__load(f->ctx, &k, "carol"), SLUICE_EDENIED);
		snprintf(want, sizeof(want), "mode %04o", (unsigned)modes[i]);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), want));
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), path));
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "chmod 600"));
	}
	/* Owner-only modes stricter than 0600 are fine. */
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(sluice_keys__load(f->ctx, &k, "carol"), 0);
	sluice_key__dispose(&k);
}

static void test_keys__symlink_and_nonregular_refused(void **state)
{
	fixture *f = *state;
	char target[PATH_MAX], link[PATH_MAX];
	sluice_key k;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "dave"), 0);
	sluice_key__dispose(&k);
	snprintf(target, sizeof(target), "%s/dave.key", f->keys);
	snprintf(link, sizeof(link), "%s/eve.key", f->keys);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(sluice_keys__load(f->ctx, &k, "eve"), SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "symbolic link"));

	snprintf(link, sizeof(link), "%s/dir.key", f->keys);
	assert_int_equal(mkdir(link, 0700), 0);
	assert_int_equal(sluice_keys__load(f->ctx, &k, "dir"), SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "not a regular file"));

	/* A FIFO must be refused, not block the reader. */
	snprintf(link, sizeof(link), "%s/fifo.key", f->keys);
	assert_int_equal(mkfifo(link, 0600), 0);
	assert_int_equal(sluice_keys__load(f->ctx, &k, "fifo"), SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "not a regular file"));
}

static void test_keys__missing_and_corrupt(void **state)
{
	fixture *f = *state;
	static const char *const bad[] = {
	        "",
	        "sluice-ed25519-secret-v2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	        "sluice-ed25519-secret-v1\n",
	        "sluice-ed25519-secret-v1\nAAAA\n",
	        "sluice-ed25519-secret-v1\n!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	        "sluice-ed25519-secret-v1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	        "sluice-ed25519-secret-v1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextra\n",
	        "sluice-ed25519-secret-v1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	};
	char path[PATH_MAX];
	sluice_key k;
	size_t i;

	assert_int_equal(sluice_keys__load(f->ctx, &k, "nobody"), SLUICE_ENOTFOUND);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "nobody.key"));

	snprintf(path, sizeof(path), "%s/bad.key", f->keys);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unlink(path);
		tu_write(path, bad[i], strlen(bad[i]));
		assert_int_equal(chmod(path, 0600), 0);
		assert_int_equal(sluice_keys__load(f->ctx, &k, "bad"), SLUICE_ECORRUPT);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "bad.key"));
	}

	/* A well-formed file of all-zero seed loads and rederives its public key. */
	snprintf(path, sizeof(path), "%s/ok.key", f->keys);
	tu_write(path, "sluice-ed25519-secret-v1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	         70);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(sluice_keys__load(f->ctx, &k, "ok"), 0);
	{
		unsigned char seed[32] = {0}, pk[32], sk[64];
		crypto_sign_seed_keypair(pk, sk, seed);
		assert_memory_equal(k.pk, pk, 32);
	}
	sluice_key__dispose(&k);
}

static void test_keys__bad_names_refused(void **state)
{
	fixture *f = *state;
	static const char *const bad[] = {"", ".hidden", "-opt", "a/b", "a b", "../x", "é"};
	char longname[SLUICE_KEY_NAME_MAX + 2];
	sluice_key k;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sluice_keys__check_name(f->ctx, bad[i]), SLUICE_EINVALID);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "key name"));
		assert_int_equal(sluice_keys__generate(f->ctx, &k, bad[i]), SLUICE_EINVALID);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sluice_keys__check_name(f->ctx, longname), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "1 to 64"));
	longname[SLUICE_KEY_NAME_MAX] = '\0';
	assert_int_equal(sluice_keys__check_name(f->ctx, longname), 0);
	assert_int_equal(sluice_keys__check_name(f->ctx, "gate-runner_2.prod"), 0);
}

static void test_keys__dir_from_environment(void **state)
{
	fixture *f = *state;
	char out[PATH_MAX], *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");

	home = home ? strdup(home) : NULL;
	xdg = xdg ? strdup(xdg) : NULL;

	assert_int_equal(setenv("XDG_CONFIG_HOME", "/xdg", 1), 0);
	assert_int_equal(setenv("HOME", "/home/u", 1), 0);
	assert_int_equal(sluice_keys__dir(f->ctx, out, sizeof(out)), 0);
	assert_string_equal(out, f->keys);
	assert_int_equal(setenv("SLUICE_KEYS", "", 1), 0);
	assert_int_equal(sluice_keys__dir(f->ctx, out, sizeof(out)), 0);
	assert_string_equal(out, "/xdg/sluice/keys");
	assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
	assert_int_equal(sluice_keys__dir(f->ctx, out, sizeof(out)), 0);
	assert_string_equal(out, "/home/u/.config/sluice/keys");
	assert_int_equal(unsetenv("HOME"), 0);
	assert_int_equal(sluice_keys__dir(f->ctx, out, sizeof(out)), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "SLUICE_KEYS"));
	assert_int_equal(setenv("SLUICE_KEYS", "/k", 1), 0);
	assert_int_equal(sluice_keys__dir(f->ctx, out, 2), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "too long"));
	if (home)
		setenv("HOME", home, 1);
	if (xdg)
		setenv("XDG_CONFIG_HOME", xdg, 1);
	else
		unsetenv("XDG_CONFIG_HOME");
	free(home);
	free(xdg);
}

/* Fail the n-th write/fsync; counts calls in data. */
typedef struct {
	int op;
	int countdown;
} fault_plan;

static int fault_hook(void *data, sluice_fault_op op, const char *what)
{
	fault_plan *p = data;

	(void)what;
	return (int)op == p->op && --p->countdown == 0;
}

static void test_keys__generate_write_failure_leaves_nothing(void **state)
{
	fixture *f = *state;
	static const int ops[] = {SLUICE_FAULT_WRITE, SLUICE_FAULT_FSYNC};
	char path[PATH_MAX];
	sluice_key k;
	size_t i;
	int n;

	snprintf(path, sizeof(path), "%s/frank.key", f->keys);
	for (i = 0; i < 2; i++) {
		/* The first write/fsync is the key file's, the second the .pub's. */
		for (n = 1; n <= 2; n++) {
			fault_plan plan = {ops[i], n};
			sluice_ctx_set_fault_hook(f->ctx, fault_hook, &plan);
			assert_int_equal(sluice_keys__generate(f->ctx, &k, "frank"), SLUICE_EIO);
			sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
			assert_int_not_equal(access(path, F_OK), 0);
		}
	}
	assert_int_equal(sluice_keys__generate(f->ctx, &k, "frank"), 0);
	assert_int_equal(access(path, F_OK), 0);
	sluice_key__dispose(&k);
}

static void test_keys__fingerprint_matches_ssh_keygen(void **state)
{
	fixture *f = *state;
	char fp[SLUICE_FP_LEN], want[128];
	tu_run_result r;
	sluice_key k;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "fp"), 0);
	sluice_keys__fingerprint(fp, k.pk);
	assert_int_equal(strlen(fp), SLUICE_FP_LEN - 1);
	r = tu_sh(child_env(f), "ssh-keygen -l -f '%s/fp.pub'", f->keys);
	assert_int_equal(r.status, 0);
	/* "256 SHA256:... fp (ED25519)" */
	snprintf(want, sizeof(want), "256 %s fp (ED25519)\n", fp);
	assert_string_equal(r.out, want);
	tu_run_dispose(&r);
	sluice_key__dispose(&k);
}

static void test_keys__openssh_pub_parse_refusals(void **state)
{
	fixture *f = *state;
	static const char *const bad[] = {
	        "",
	        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
	        "ssh-ed25519",
	        "ssh-ed25519 ",
	        "ssh-ed25519 !!!!",
	        /* ssh-rsa key type inside an ssh-ed25519 line */
	        "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB",
	        /* blob with a 31-byte key */
	        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAHwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	        "ssh-ed25519 AAAA\nssh-ed25519 AAAA",
	};
	unsigned char pk[32], zero[32] = {0};
	sluice_buf line = {0};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sluice_keys__parse_openssh_pub(f->ctx, pk, bad[i], strlen(bad[i])),
		                 SLUICE_EINVALID);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "public key"));
	}
	/* No comment, and the round trip through the parser. */
	assert_int_equal(sluice_keys__openssh_pub(f->ctx, zero, NULL, &line), 0);
	assert_string_equal(
	        (char *)line.ptr,
	        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	memset(pk, 1, sizeof(pk));
	assert_int_equal(sluice_keys__parse_openssh_pub(f->ctx, pk, (char *)line.ptr, line.len), 0);
	assert_memory_equal(pk, zero, 32);
	line.len = 0;
	assert_int_equal(sluice_keys__openssh_pub(f->ctx, zero, "a\nb", &line), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "line break"));
	sluice_buf__dispose(&line);
}

static void test_keys__allowed_signers_line(void **state)
{
	fixture *f = *state;
	static const char *const bad[] = {"", "a b", "a,b", "*", "a\"b", "x\ny", "!neg"};
	unsigned char zero[32] = {0};
	sluice_buf out = {0};
	size_t i;

	assert_int_equal(sluice_keys__allowed_signers(f->ctx, "alice@example.com", zero, &out), 0);
	assert_string_equal(
	        (char *)out.ptr,
	        "alice@example.com namespaces=\"git\" ssh-ed25519 "
	        "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sluice_keys__allowed_signers(f->ctx, bad[i], zero, &out),
		                 SLUICE_EINVALID);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "principal"));
	}
	sluice_buf__dispose(&out);
}

/* Line lengths of an armoured signature, for comparing layouts. */
static void line_lengths(const char *s, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		n += (size_t)snprintf(out + n, outlen - n, "%zu,", len);
		if (!nl)
			break;
		s = nl + 1;
	}
}

static void test_keys__sshsig_verified_by_ssh_keygen(void **state)
{
	fixture *f = *state;
	static const char msg[] = "tree 4b825dc642cb6eb9a060e54bf8d69288fbbfe4b0\n\nhello\n";
	sluice_buf sig = {0}, signers = {0};
	unsigned char signer[32];
	tu_run_result r;
	sluice_key k;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "signer"), 0);
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", msg, strlen(msg), &sig), 0);
	assert_int_equal(strncmp((char *)sig.ptr, "-----BEGIN SSH SIGNATURE-----\n", 30), 0);
	assert_non_null(strstr((char *)sig.ptr, "\n-----END SSH SIGNATURE-----\n"));
	assert_int_equal(sluice_keys__allowed_signers(f->ctx, "signer@example.com", k.pk, &signers),
	                 0);
	write_str(f->dir, "allowed", signers.ptr, signers.len);
	write_str(f->dir, "msg", msg, strlen(msg));
	write_str(f->dir, "msg.sig", sig.ptr, sig.len);

	r = tu_sh(child_env(f),
	          "cd '%s' && ssh-keygen -Y verify -f allowed -I signer@example.com -n git "
	          "-s msg.sig < msg",
	          f->dir);
	if (r.status != 0)
		fprintf(stderr, "ssh-keygen: %s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Good \"git\" signature for signer@example.com"));
	tu_run_dispose(&r);

	/* ssh-keygen refuses it for another namespace and for another message. */
	r = tu_sh(child_env(f),
	          "cd '%s' && ssh-keygen -Y verify -f allowed -I signer@example.com -n file "
	          "-s msg.sig < msg",
	          f->dir);
	assert_int_not_equal(r.status, 0);
	tu_run_dispose(&r);
	r = tu_sh(child_env(f),
	          "cd '%s' && echo tampered | ssh-keygen -Y verify -f allowed -I "
	          "signer@example.com -n git -s msg.sig",
	          f->dir);
	assert_int_not_equal(r.status, 0);
	tu_run_dispose(&r);

	/* And sluice verifies its own signature, returning the signer. */
	assert_int_equal(sluice_sshsig__verify(f->ctx, signer, (char *)sig.ptr, sig.len, "git", msg,
	                                       strlen(msg)),
	                 0);
	assert_memory_equal(signer, k.pk, 32);

	sluice_buf__dispose(&sig);
	sluice_buf__dispose(&signers);
	sluice_key__dispose(&k);
}

static void test_keys__ssh_keygen_signature_verified_by_sluice(void **state)
{
	fixture *f = *state;
	static const char msg[] = "a message signed by stock ssh-keygen\n";
	char path[PATH_MAX], ours_layout[64], theirs_layout[64];
	unsigned char pk[32], signer[32];
	unsigned char *pub, *sig;
	size_t publen, siglen;
	sluice_buf mine = {0};
	tu_run_result r;
	sluice_key k;

	r = tu_sh(child_env(f),
	          "cd '%s' && ssh-keygen -q -t ed25519 -N '' -C ext -f ext && "
	          "printf '%%s' '%s' > m && ssh-keygen -q -Y sign -n git -f ext m && "
	          "ssh-keygen -q -Y sign -n git -O hashalg=sha256 -f ext < m > m.sha256.sig",
	          f->dir, msg);
	if (r.status != 0)
		fprintf(stderr, "ssh-keygen: %s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);

	snprintf(path, sizeof(path), "%s/ext.pub", f->dir);
	assert_non_null(pub = tu_read(path, &publen));
	assert_int_equal(sluice_keys__parse_openssh_pub(f->ctx, pk, (char *)pub, publen), 0);
	snprintf(path, sizeof(path), "%s/m.sig", f->dir);
	assert_non_null(sig = tu_read(path, &siglen));

	memset(signer, 0, sizeof(signer));
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)sig, siglen, "git", msg, strlen(msg)),
	        0);
	assert_memory_equal(signer, pk, 32);

	/* Tampered message, other namespace: refused. */
	assert_int_equal(sluice_sshsig__verify(f->ctx, signer, (char *)sig, siglen, "git", msg,
	                                       strlen(msg) - 1),
	                 SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "does not verify"));
	assert_int_equal(sluice_sshsig__verify(f->ctx, signer, (char *)sig, siglen, "file", msg,
	                                       strlen(msg)),
	                 SLUICE_EDENIED);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "namespace 'git'"));

	/* Our armour has the very layout ssh-keygen writes. */
	assert_int_equal(sluice_keys__generate(f->ctx, &k, "layout"), 0);
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", msg, strlen(msg), &mine), 0);
	line_lengths((char *)mine.ptr, ours_layout, sizeof(ours_layout));
	line_lengths((char *)sig, theirs_layout, sizeof(theirs_layout));
	assert_string_equal(ours_layout, theirs_layout);
	assert_int_equal(mine.len, siglen);
	free(sig);

	/* -O hashalg=sha256 signatures verify too. */
	snprintf(path, sizeof(path), "%s/m.sha256.sig", f->dir);
	assert_non_null(sig = tu_read(path, &siglen));
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)sig, siglen, "git", msg, strlen(msg)),
	        0);
	assert_memory_equal(signer, pk, 32);
	assert_int_equal(sluice_sshsig__verify(f->ctx, signer, (char *)sig, siglen, "git", "x", 1),
	                 SLUICE_EDENIED);

	free(sig);
	free(pub);
	sluice_buf__dispose(&mine);
	sluice_key__dispose(&k);
}

/* Re-armour a raw SSHSIG blob the way ssh-keygen does. */
static void armor(sluice_ctx *ctx, sluice_buf *out, const unsigned char *blob, size_t len)
{
	char b64[4096];
	size_t i, n;

	sodium_bin2base64(b64, sizeof(b64), blob, len, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	out->len = 0;
	assert_int_equal(sluice_buf__puts(ctx, out, "-----BEGIN SSH SIGNATURE-----\n"), 0);
	for (i = 0; i < n; i += 70) {
		assert_int_equal(sluice_buf__put(ctx, out, b64 + i, n - i < 70 ? n - i : 70), 0);
		assert_int_equal(sluice_buf__puts(ctx, out, "\n"), 0);
	}
	assert_int_equal(sluice_buf__puts(ctx, out, "-----END SSH SIGNATURE-----\n"), 0);
}

static void test_keys__sshsig_malformed_refused(void **state)
{
	fixture *f = *state;
	static const char msg[] = "m";
	unsigned char blob[512], copy[512], signer[32];
	size_t bloblen, i;
	sluice_buf sig = {0}, bad = {0};
	sluice_key k;
	const char *body;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "mal"), 0);
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", msg, 1, &sig), 0);
	body = (char *)sig.ptr + 30;
	assert_int_equal(sodium_base642bin(blob, sizeof(blob), body,
	                                   strstr(body, "-----END") - body, "\n", &bloblen, NULL,
	                                   sodium_base64_VARIANT_ORIGINAL),
	                 0);
	assert_int_equal(bloblen, 173);

	/* Sanity: the re-armoured original verifies, with or without the final newline. */
	armor(f->ctx, &bad, blob, bloblen);
	assert_memory_equal(bad.ptr, sig.ptr, sig.len);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len - 1, "git", msg, 1),
	        0);

	/* Every truncation is malformed, never a crash or a pass. */
	for (i = 0; i < bloblen; i++) {
		armor(f->ctx, &bad, blob, i);
		assert_int_equal(sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len,
		                                       "git", msg, 1),
		                 SLUICE_EINVALID);
		assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "SSH signature"));
	}
	/* Trailing bytes. */
	memcpy(copy, blob, bloblen);
	copy[bloblen] = 0;
	armor(f->ctx, &bad, copy, bloblen + 1);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "trailing"));
	/* Wrong magic, wrong version. */
	memcpy(copy, blob, bloblen);
	copy[0] = 'X';
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "magic"));
	memcpy(copy, blob, bloblen);
	copy[9] = 2;
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "version 2"));
	/* Key type: "ssh-ed25519" at offset 14 -> "ssh-ed25518". */
	memcpy(copy, blob, bloblen);
	assert_memory_equal(copy + 18, "ssh-ed25519", 11);
	copy[28] = '8';
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "key type"));
	/* Hash algorithm "sha512" -> "sha511". */
	memcpy(copy, blob, bloblen);
	assert_memory_equal(copy + 6 + 4 + 55 + 7 + 4 + 4, "sha512", 6);
	copy[6 + 4 + 55 + 7 + 4 + 4 + 5] = '1';
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "hash algorithm"));
	/* Signature type inside the signature blob. */
	memcpy(copy, blob, bloblen);
	assert_memory_equal(copy + bloblen - 64 - 4 - 11, "ssh-ed25519", 11);
	copy[bloblen - 64 - 4 - 1] = '8';
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "signature type"));
	/* A flipped signature bit is a refusal, not malformed. */
	memcpy(copy, blob, bloblen);
	copy[bloblen - 1] ^= 1;
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EDENIED);
	/* A substituted public key does not verify either. */
	memcpy(copy, blob, bloblen);
	copy[6 + 4 + 4 + 19] ^= 1;
	armor(f->ctx, &bad, copy, bloblen);
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)bad.ptr, bad.len, "git", msg, 1),
	        SLUICE_EDENIED);

	/* Armour problems. */
	assert_int_equal(sluice_sshsig__verify(f->ctx, signer, "hello", 5, "git", msg, 1),
	                 SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "BEGIN SSH SIGNATURE"));
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)sig.ptr, sig.len - 10, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "END SSH SIGNATURE"));
	memcpy(copy, sig.ptr, sig.len);
	copy[40] = '*';
	assert_int_equal(
	        sluice_sshsig__verify(f->ctx, signer, (char *)copy, sig.len, "git", msg, 1),
	        SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "base64"));

	/* Signing needs a secret half and a namespace. */
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "", msg, 1, &bad), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "namespace"));
	sluice_key__dispose(&k);
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", msg, 1, &bad), SLUICE_EINVALID);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), "secret"));

	sluice_buf__dispose(&sig);
	sluice_buf__dispose(&bad);
}

static int fail_nth_alloc(void *data, sluice_fault_op op, const char *what)
{
	int *countdown = data;

	(void)what;
	return op == SLUICE_FAULT_ALLOC && --*countdown == 0;
}

/* Every allocation failure in sign/verify is ENOMEM and leaks nothing (ASan). */
static void test_keys__sshsig_allocation_failures(void **state)
{
	fixture *f = *state;
	sluice_buf sig = {0}, out = {0};
	unsigned char signer[32];
	int n, countdown, rc, failures = 0;
	sluice_key k;

	assert_int_equal(sluice_keys__generate(f->ctx, &k, "alloc"), 0);
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", "m", 1, &sig), 0);
	for (n = 1; n < 40; n++) {
		countdown = n;
		sluice_ctx_set_fault_hook(f->ctx, fail_nth_alloc, &countdown);
		out.len = 0;
		rc = sluice_sshsig__sign(f->ctx, &k, "git", "m", 1, &out);
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		failures += rc != 0;
		countdown = n;
		rc = sluice_sshsig__verify(f->ctx, signer, (char *)sig.ptr, sig.len, "git", "m", 1);
		assert_true(rc == 0 || rc == SLUICE_ENOMEM);
		failures += rc != 0;
		sluice_ctx_set_fault_hook(f->ctx, NULL, NULL);
	}
	assert_true(failures > 0);
	sluice_buf__dispose(&sig);
	sluice_buf__dispose(&out);
	sluice_key__dispose(&k);
}

/* Build a commit buffer over a one-file tree. */
static void commit_buffer(git_repository *repo, git_buf *out, const char *message)
{
	git_treebuilder *tb;
	git_signature *who;
	git_oid blob, tree_id;
	git_tree *tree;

	assert_int_equal(git_blob_create_from_buffer(&blob, repo, "weights\n", 8), 0);
	assert_int_equal(git_treebuilder_new(&tb, repo, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "model.txt", &blob, GIT_FILEMODE_BLOB),
	                 0);
	assert_int_equal(git_treebuilder_write(&tree_id, tb), 0);
	git_treebuilder_free(tb);
	assert_int_equal(git_tree_lookup(&tree, repo, &tree_id), 0);
	assert_int_equal(git_signature_new(&who, "Alice", "alice@example.com", 1700000000, 0), 0);
	assert_int_equal(
	        git_commit_create_buffer(out, repo, who, who, NULL, message, tree, 0, NULL), 0);
	git_signature_free(who);
	git_tree_free(tree);
}

static void test_keys__git_verify_commit_accepts_sshsig(void **state)
{
	fixture *f = *state;
	char repodir[PATH_MAX], signers_path[PATH_MAX], id[GIT_OID_HEXSZ + 1];
	git_repository *repo;
	git_buf good = GIT_BUF_INIT, evil = GIT_BUF_INIT;
	sluice_buf sig = {0}, signers = {0};
	git_oid oid;
	tu_run_result r;
	sluice_key k;

	snprintf(repodir, sizeof(repodir), "%s/repo", f->dir);
	assert_int_equal(git_repository_init(&repo, repodir, 0), 0);
	assert_int_equal(sluice_keys__generate(f->ctx, &k, "committer"), 0);
	assert_int_equal(sluice_keys__allowed_signers(f->ctx, "alice@example.com", k.pk, &signers),
	                 0);
	snprintf(signers_path, sizeof(signers_path), "%s/allowed_signers", f->dir);
	tu_write(signers_path, signers.ptr, signers.len);

	commit_buffer(repo, &good, "version 1\n");
	assert_int_equal(sluice_sshsig__sign(f->ctx, &k, "git", good.ptr, good.size, &sig), 0);
	/* git itself stores the armour without a blank continuation line. */
	sig.ptr[--sig.len] = '\0';
	assert_int_equal(
	        git_commit_create_with_signature(&oid, repo, good.ptr, (char *)sig.ptr, "gpgsig"),
	        0);
	git_oid_tostr(id, sizeof(id), &oid);

	r = tu_sh(child_env(f),
	          "git -C '%s' -c gpg.format=ssh -c gpg.ssh.allowedSignersFile='%s' "
	          "verify-commit %s",
	          repodir, signers_path, id);
	if (r.status != 0)
		fprintf(stderr, "git verify-commit: %s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "Good \"git\" signature"));
	assert_non_null(strstr(r.err, "alice@example.com"));
	tu_run_dispose(&r);

	/* The same signature over altered content: git refuses it. */
	commit_buffer(repo, &evil, "version 2\n");
	assert_int_equal(
	        git_commit_create_with_signature(&oid, repo, evil.ptr, (char *)sig.ptr, "gpgsig"),
	        0);
	git_oid_tostr(id, sizeof(id), &oid);
	r = tu_sh(child_env(f),
	          "git -C '%s' -c gpg.format=ssh -c gpg.ssh.allowedSignersFile='%s' "
	          "verify-commit %s",
	          repodir, signers_path, id);
	assert_int_not_equal(r.status, 0);
	assert_null(strstr(r.err, "Good \"git\" signature"));
	tu_run_dispose(&r);

	/* sluice reads the signature back out of the commit and agrees. */
	{
		git_buf extracted = GIT_BUF_INIT, signed_data = GIT_BUF_INIT;
		unsigned char signer[32];
		git_oid good_id;

		assert_int_equal(git_commit_create_with_signature(&good_id, repo, good.ptr,
		                                                  (char *)sig.ptr, "gpgsig"),
		                 0);
		assert_int_equal(git_commit_extract_signature(&extracted, &signed_data, repo,
		                                              &good_id, "gpgsig"),
		                 0);
		assert_int_equal(sluice_sshsig__verify(f->ctx, signer, extracted.ptr,
		                                       extracted.size, "git", signed_data.ptr,
		                                       signed_data.size),
		                 0);
		assert_memory_equal(signer, k.pk, 32);
		git_buf_dispose(&extracted);
		git_buf_dispose(&signed_data);
		assert_int_equal(git_commit_extract_signature(&extracted, &signed_data, repo, &oid,
		                                              "gpgsig"),
		                 0);
		assert_int_equal(sluice_sshsig__verify(f->ctx, signer, extracted.ptr,
		                                       extracted.size, "git", signed_data.ptr,
		                                       signed_data.size),
		                 SLUICE_EDENIED);
		git_buf_dispose(&extracted);
		git_buf_dispose(&signed_data);
	}

	git_buf_dispose(&good);
	git_buf_dispose(&evil);
	sluice_buf__dispose(&sig);
	sluice_buf__dispose(&signers);
	sluice_key__dispose(&k);
	git_repository_free(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_keys__generate_load_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__generate_twice_exists, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__loose_permissions_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__symlink_and_nonregular_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__missing_and_corrupt, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__bad_names_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__dir_from_environment, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__generate_write_failure_leaves_nothing,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__fingerprint_matches_ssh_keygen, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__openssh_pub_parse_refusals, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__allowed_signers_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__sshsig_verified_by_ssh_keygen, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__ssh_keygen_signature_verified_by_sluice,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keys__sshsig_malformed_refused, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__sshsig_allocation_failures, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_keys__git_verify_commit_accepts_sshsig, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
