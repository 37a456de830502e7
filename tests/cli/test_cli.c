/*
 * tests/cli/test_cli.c - the sluice program end to end: a real repository,
 * real keys, stock git and coreutils as independent checkers, and every
 * refusal asserted to name the problem and to leave the repository
 * byte-for-byte unchanged.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	char *work;
	char repo[4096];
	char in[4096];
	char base_id[41];
} fixture;

static char envbuf[4300];
static const char *env_keys[] = {envbuf, "SLUICE_KEY=", NULL};

static tu_run_result sl(fixture *f, const char *args)
{
	return tu_sh(env_keys, "%s -C '%s' %s", TU_SLUICE, f->repo, args);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tu_run_result r;

	f->work = tu_mkdtemp("cli");
	snprintf(envbuf, sizeof(envbuf), "SLUICE_KEYS=%s/keys", f->work);
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->work);
	snprintf(f->in, sizeof(f->in), "%s/in", f->work);
	r = tu_sh(NULL,
	          "%s model '%s/base' --hidden 32 --inter 64 --layers 2 --vocab 64 --dtype bf16 && "
	          "%s lora '%s/lora1' --base '%s/base' --r 4 --alpha 8 --targets q_proj,v_proj",
	          SLUICE_SYNTH, f->in, SLUICE_SYNTH, f->in, f->in);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = sl(f, "init --root-key root1");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "SHA256:"));
	tu_run_dispose(&r);
	r = sl(f, "key new alice --role proposer");
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = tu_sh(env_keys, "%s -C '%s' propose base '%s/base' --key alice -m base", TU_SLUICE,
	          f->repo, f->in);
	if (r.status != 0)
		fprintf(stderr, "%s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_last_line(f->base_id, r.out);
	tu_run_dispose(&r);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	tu_rmtree(f->work);
	free(f->work);
	free(f);
	return 0;
}

/* Assert a command is refused with exit 4, a message containing `needle`, and no change. */
static void assert_refused(fixture *f, const char *args, const char *needle)
{
	tu_refused(env_keys, f->repo, 4, needle, args);
}

static void test_cli__checkout_is_byte_identical_and_b2sum_checks_it(void **state)
{
	fixture *f = *state;
	char args[8192];
	tu_run_result r;

	snprintf(args, sizeof(args), "checkout %s '%s/co'", f->base_id, f->work);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = tu_sh(NULL,
	          "cmp '%s/base/model.safetensors' '%s/co/base/model.safetensors' && "
	          "cmp '%s/base/config.json' '%s/co/base/config.json' && cd '%s/co' && "
	          "b2sum -c B2SUMS",
	          f->in, f->work, f->in, f->work, f->work);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "base/model.safetensors: OK"));
	tu_run_dispose(&r);
	/* A second checkout into a non-empty directory is refused. */
	r = sl(f, args);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.err, "not empty"));
	tu_run_dispose(&r);
	tu_sh_ok(NULL, "rm -rf '%s/co'", f->work);
}

static void test_cli__stock_git_verifies_version_signatures(void **state)
{
	fixture *f = *state;
	tu_run_result r;

	r = tu_sh(env_keys,
	          "%s -C '%s' key export --all --allowed-signers > '%s/as' && "
	          "git -C '%s' -c gpg.format=ssh -c gpg.ssh.allowedSignersFile='%s/as' "
	          "verify-commit %s",
	          TU_SLUICE, f->repo, f->work, f->repo, f->work, f->base_id);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "Good \"git\" signature"));
	tu_run_dispose(&r);
	/* The journal's entries are signed commits too. */
	r = tu_sh(NULL,
	          "git -C '%s' -c gpg.format=ssh -c gpg.ssh.allowedSignersFile='%s/as' "
	          "verify-commit refs/sluice/journal",
	          f->repo, f->work);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static void test_cli__lora_memory_replay_and_identical_reproposal(void **state)
{
	fixture *f = *state;
	char args[8192], lora[41], mem[41], rep[41], again[41];
	tu_run_result r;

	snprintf(args, sizeof(args),
	         "propose lora '%s/lora1' --onto %s --key alice -m facts "
	         "--target-suite facts --source fb=blake2b:%064d",
	         f->in, f->base_id, 7);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_last_line(lora, r.out);
	tu_run_dispose(&r);

	{
		char p[4200];
		snprintf(p, sizeof(p), "%s/note.md", f->in);
		tu_write(p, "Prefer metric units.\n", 21);
		snprintf(p, sizeof(p), "%s/note2.md", f->in);
		tu_write(p, "Prefer imperial units.\n", 23);
		snprintf(p, sizeof(p), "%s/batch.jsonl", f->in);
		tu_write(p, "{\"prompt\":\"a\",\"completion\":\"b\",\"source\":\"s\"}\n", 45);
	}
	snprintf(args, sizeof(args), "propose memory --onto %s --add '%s/note.md' --key alice",
	         lora, f->in);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_last_line(mem, r.out);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args),
	         "propose memory --onto %s --replace note.md '%s/note2.md' --key alice", mem,
	         f->in);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_last_line(again, r.out);
	tu_run_dispose(&r);
	/* git diff between the versions shows the memory edit as text. */
	r = tu_sh(NULL, "git -C '%s' diff %s %s -- files/memory/note.md", f->repo, mem, again);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "-Prefer metric units."));
	assert_non_null(strstr(r.out, "+Prefer imperial units."));
	tu_run_dispose(&r);

	snprintf(args, sizeof(args), "propose replay '%s/batch.jsonl' --onto %s --key alice", f->in,
	         mem);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_last_line(rep, r.out);
	tu_run_dispose(&r);
	/* Identical content onto the same parent: the existing version. */
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_last_line(again, r.out);
	assert_string_equal(rep, again);
	tu_run_dispose(&r);

	snprintf(args, sizeof(args), "show %s --json", rep);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"replay\""));
	assert_non_null(strstr(r.out, "\"records\""));
	tu_run_dispose(&r);

	/* The full state checks out: adapter as a PEFT directory, note, batch. */
	snprintf(args, sizeof(args), "checkout %s '%s/co2'", rep, f->work);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = tu_sh(NULL,
	          "cd '%s/co2' && b2sum -c B2SUMS && cmp adapters/lora1/adapter_model.safetensors "
	          "'%s/lora1/adapter_model.safetensors' && cmp memory/note.md '%s/note.md' && "
	          "cmp replay/batch.jsonl '%s/batch.jsonl'",
	          f->work, f->in, f->in, f->in);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);

	/* A new base onto the stack drops the adapter and says so. */
	snprintf(args, sizeof(args), "propose base '%s/base' --onto %s --key alice --json", f->in,
	         rep);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"dropped_adapters\": [\n      \"lora1\""));
	/* The same base files again: every chunk is already stored. */
	assert_non_null(strstr(r.out, "\"new_bytes\": 0"));
	assert_null(strstr(r.out, "\"bytes_chunked\": 0"));
	tu_run_dispose(&r);

	r = sl(f, "verify");
	if (r.status)
		fprintf(stderr, "%s%s", r.out, r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static void write_st(const char *path, const char *header, size_t datalen)
{
	size_t n = strlen(header);
	unsigned char *buf = calloc(1, 8 + n + datalen);

	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(buf + 8, header, n);
	tu_write(path, buf, 8 + n + datalen);
	free(buf);
}

/* A base directory whose model.safetensors is replaced by a crafted one. */
static void bad_base(fixture *f, const char *name, const char *header, size_t datalen,
                     const char *needle)
{
	char dir[4200], path[4300], args[8800];
	tu_run_result r;

	snprintf(dir, sizeof(dir), "%s/bad-%s", f->work, name);
	r = tu_sh(NULL, "rm -rf '%s' && cp -r '%s/base' '%s'", dir, f->in, dir);
	tu_run_dispose(&r);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	write_st(path, header, datalen);
	snprintf(args, sizeof(args), "propose base '%s' --key alice", dir);
	assert_refused(f, args, needle);
}

static void test_cli__malformed_safetensors_refused(void **state)
{
	fixture *f = *state;
	char dir[4200], path[4300], args[8800];
	unsigned char big[16] = {0};

	bad_base(f, "nonobject", "[1,2]", 0, "not a JSON object");
	bad_base(f, "dup",
	         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	         8, "duplicate");
	bad_base(f, "overlap",
	         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
	         8, "overlap");
	bad_base(f, "gap",
	         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
	         12, "gap");
	bad_base(f, "shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
	         "does not match");
	bad_base(f, "neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
	         "negative");
	bad_base(f, "dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
	         "Q4");
	bad_base(f, "utf8", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
	         4, "UTF-8");
	/* Header length past the end of the file, and over 100 MB. */
	snprintf(dir, sizeof(dir), "%s/bad-len", f->work);
	tu_sh_ok(NULL, "rm -rf '%s' && cp -r '%s/base' '%s'", dir, f->in, dir);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	big[0] = 0xff;
	big[1] = 0x00;
	big[8] = '{';
	tu_write(path, big, sizeof(big));
	snprintf(args, sizeof(args), "propose base '%s' --key alice", dir);
	assert_refused(f, args, "past end of file");
	big[0] = 0;
	big[3] = 0x10; /* 256 MiB header */
	tu_write(path, big, sizeof(big));
	assert_refused(f, args, "100 MB");
}

static void test_cli__pickles_refused_by_name_and_printable_starts_accepted(void **state)
{
	fixture *f = *state;
	char dir[4200], path[4300], args[8800];
	static const unsigned char pk[] = {0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, '}', '.'};
	static const unsigned char zip[] = "PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	                                   "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	                                   "\x10\x00\x00\x00archive/data.pkl";
	tu_run_result r;

	snprintf(dir, sizeof(dir), "%s/pickle", f->work);
	tu_sh_ok(NULL, "rm -rf '%s' && cp -r '%s/base' '%s'", dir, f->in, dir);
	snprintf(path, sizeof(path), "%s/pytorch_model.bin", dir);
	for (unsigned char proto = 2; proto <= 5; proto++) {
		unsigned char b[sizeof(pk)];
		memcpy(b, pk, sizeof(pk));
		b[1] = proto;
		tu_write(path, b, sizeof(b));
		snprintf(args, sizeof(args), "propose base '%s' --key alice", dir);
		assert_refused(f, args, "pickle");
	}
	/* Whatever the extension: a pickle named .safetensors is still named a pickle. */
	unlink(path);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	tu_write(path, pk, sizeof(pk));
	assert_refused(f, args, "pickle");
	tu_write(path, zip, sizeof(zip) - 1);
	assert_refused(f, args, "zip-of-pickle");

	/* A safetensors file whose first byte is printable ('H' = header of 72 bytes). */
	snprintf(dir, sizeof(dir), "%s/printable", f->work);
	tu_sh_ok(NULL, "rm -rf '%s' && cp -r '%s/base' '%s'", dir, f->in, dir);
	snprintf(path, sizeof(path), "%s/extra.safetensors", dir);
	{
		char hdr[73];
		snprintf(hdr, sizeof(hdr), "%-72s",
		         "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
		write_st(path, hdr, 4);
	}
	snprintf(path, sizeof(path), "%s/NOTES.txt", dir);
	tu_write(path, "Plain text starting with a letter.\n", 35);
	snprintf(args, sizeof(args), "propose base '%s' --key alice", dir);
	r = sl(f, args);
	if (r.status)
		fprintf(stderr, "%s", r.err);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static void test_cli__special_files_and_hostile_names_refused(void **state)
{
	fixture *f = *state;
	char dir[4200], path[4300], args[8800];

	snprintf(dir, sizeof(dir), "%s/special", f->work);
	snprintf(args, sizeof(args), "propose base '%s' --key alice", dir);

	tu_sh_ok(NULL, "rm -rf '%s' && cp -r '%s/base' '%s' && ln -s /etc/passwd '%s/link.txt'",
	         dir, f->in, dir, dir);
	assert_refused(f, args, "symbolic link");
	tu_sh_ok(NULL, "rm -f '%s/link.txt' && mkfifo '%s/fifo'", dir, dir);
	assert_refused(f, args, "FIFO");
	tu_sh_ok(NULL, "rm -f '%s/fifo' && mknod '%s/null' c 1 3", dir, dir);
	snprintf(path, sizeof(path), "%s/null", dir);
	{
		struct stat st;
		/* mknod needs root; CI runs as root, and this asserts that it ran. */
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISCHR(st.st_mode));
	}
	assert_refused(f, args, "character device");

	/* Hostile names given on the command line. */
	snprintf(path, sizeof(path), "%s/note.md", f->in);
	tu_write(path, "hello\n", 6);
	snprintf(args, sizeof(args),
	         "propose memory --onto %s --replace ../../etc/passwd '%s' --key alice", f->base_id,
	         path);
	assert_refused(f, args, "refusing memory note name");
	snprintf(args, sizeof(args), "propose memory --onto %s --remove /abs --key alice",
	         f->base_id);
	assert_refused(f, args, "refusing memory note name");
	{
		char longname[300];
		memset(longname, 'a', 256);
		longname[256] = '\0';
		snprintf(args, sizeof(args),
		         "propose lora '%s/lora1' --onto %s --name %s --key alice", f->in,
		         f->base_id, longname);
		assert_refused(f, args, "refusing adapter name");
	}
}

static void test_cli__bad_adapter_replay_and_keys_refused(void **state)
{
	fixture *f = *state;
	char args[8800], path[4300];
	tu_run_result r;

	/* An adapter made for a wider model does not fit this base. */
	r = tu_sh(NULL,
	          "%s model '%s/wide' --hidden 48 --inter 64 --layers 2 --vocab 64 && "
	          "%s lora '%s/widelora' --base '%s/wide' --r 4",
	          SLUICE_SYNTH, f->work, SLUICE_SYNTH, f->work, f->work);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "propose lora '%s/widelora' --onto %s --key alice", f->work,
	         f->base_id);
	assert_refused(f, args, "lora_A");

	snprintf(path, sizeof(path), "%s/bad.jsonl", f->work);
	tu_write(path, "{\"prompt\":\"a\",\"completion\":\"b\",\"source\":\"s\"}\n[1,2]\n", 50);
	snprintf(args, sizeof(args), "propose replay '%s' --onto %s --key alice", path, f->base_id);
	assert_refused(f, args, "line 2: a replay record must be a JSON object");

	/* A key without the proposer role, and a key file with loose permissions. */
	r = sl(f, "key new bob --role approver");
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	{
		char before[65], after[65];
		tu_tree_digest(f->repo, before);
		snprintf(args, sizeof(args), "propose base '%s/base' --key bob", f->in);
		r = sl(f, args);
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.err, "proposer role"));
		tu_run_dispose(&r);
		tu_tree_digest(f->repo, after);
		assert_string_equal(before, after);
	}
	snprintf(path, sizeof(path), "%s/keys/alice.key", f->work);
	assert_int_equal(chmod(path, 0644), 0);
	{
		char before[65], after[65];
		tu_tree_digest(f->repo, before);
		snprintf(args, sizeof(args), "propose base '%s/base' --key alice", f->in);
		r = sl(f, args);
		assert_int_not_equal(r.status, 0);
		assert_non_null(strstr(r.err, "0644"));
		tu_run_dispose(&r);
		tu_tree_digest(f->repo, after);
		assert_string_equal(before, after);
	}
	assert_int_equal(chmod(path, 0600), 0);
}

static void test_cli__verify_catches_altered_chunk_manifest_and_commit(void **state)
{
	fixture *f = *state;
	tu_run_result r;

	r = sl(f, "verify --json");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"ok\": true"));
	tu_run_dispose(&r);

	/* An altered commit: another commit's bytes stored under the version's id. */
	r = tu_sh(NULL,
	          "cd '%s' && p=objects/$(echo %s | cut -c1-2)/$(echo %s | cut -c3-) && "
	          "cp $p '%s/saved-commit' && chmod u+w $p && "
	          "new=$(git cat-file commit %s | sed 's/Sluice-Kind: base/Sluice-Kind: evil/' | "
	          "git hash-object -t commit -w --stdin) && "
	          "cp objects/$(echo $new | cut -c1-2)/$(echo $new | cut -c3-) $p",
	          f->repo, f->base_id, f->base_id, f->work, f->base_id);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = sl(f, "verify");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "problem:"));
	tu_run_dispose(&r);
	r = tu_sh(NULL,
	          "cd '%s' && p=objects/$(echo %s | cut -c1-2)/$(echo %s | cut -c3-) && cp "
	          "'%s/saved-commit' $p",
	          f->repo, f->base_id, f->base_id, f->work);
	tu_run_dispose(&r);
	r = sl(f, "verify");
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);

	/* An altered manifest. */
	r = tu_sh(NULL,
	          "cd '%s' && m=$(git rev-parse %s:files/base/model.safetensors) && "
	          "p=objects/$(echo $m | cut -c1-2)/$(echo $m | cut -c3-) && cp $p '%s/saved-m' && "
	          "chmod u+w $p && "
	          "new=$(git cat-file blob $m | sed 's/^size .*/size 1/' | git hash-object -w "
	          "--stdin) && "
	          "cp objects/$(echo $new | cut -c1-2)/$(echo $new | cut -c3-) $p",
	          f->repo, f->base_id, f->work);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = sl(f, "verify");
	assert_int_equal(r.status, 1);
	tu_run_dispose(&r);
	r = tu_sh(NULL,
	          "cd '%s' && m=$(git rev-parse %s:files/base/model.safetensors) && "
	          "p=objects/$(echo $m | cut -c1-2)/$(echo $m | cut -c3-) && cp '%s/saved-m' $p",
	          f->repo, f->base_id, f->work);
	tu_run_dispose(&r);

	/* An altered chunk: flip one byte inside a pack's data. */
	r = tu_sh(NULL,
	          "cd '%s/sluice/packs' && p=$(ls -S *.pack | head -n1) && chmod u+w $p && "
	          "printf '\\377' | dd of=$p bs=1 seek=4096 conv=notrunc status=none",
	          f->repo);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
	r = sl(f, "verify");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "chunk"));
	tu_run_dispose(&r);
}

static void test_cli__reindex_rebuilds_the_index(void **state)
{
	fixture *f = *state;
	char args[8192];
	tu_run_result r;

	r = tu_sh(NULL, "rm -rf '%s/sluice/index'", f->repo);
	tu_run_dispose(&r);
	r = sl(f, "reindex");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "chunks"));
	tu_run_dispose(&r);
	snprintf(args, sizeof(args), "checkout %s '%s/co3'", f->base_id, f->work);
	r = sl(f, args);
	assert_int_equal(r.status, 0);
	tu_run_dispose(&r);
}

static void test_cli__help_and_usage(void **state)
{
	static const char *const cmds[] = {
	        "init",         "key new",        "key list",       "key export", "propose base",
	        "propose lora", "propose memory", "propose replay", "log",        "show",
	        "diff",         "checkout",       "verify",         "reindex"};
	tu_run_result r;
	(void)state;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		r = tu_sh(NULL, "%s help %s", TU_SLUICE, cmds[i]);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "usage: sluice"));
		assert_non_null(strstr(r.out, "Exit codes"));
		tu_run_dispose(&r);
	}
	r = tu_sh(NULL, "%s frobnicate", TU_SLUICE);
	assert_int_equal(r.status, 3);
	tu_run_dispose(&r);
	r = tu_sh(NULL, "%s propose lora somedir", TU_SLUICE);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "--onto"));
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cli__checkout_is_byte_identical_and_b2sum_checks_it),
	        cmocka_unit_test(test_cli__stock_git_verifies_version_signatures),
	        cmocka_unit_test(test_cli__lora_memory_replay_and_identical_reproposal),
	        cmocka_unit_test(test_cli__malformed_safetensors_refused),
	        cmocka_unit_test(test_cli__pickles_refused_by_name_and_printable_starts_accepted),
	        cmocka_unit_test(test_cli__special_files_and_hostile_names_refused),
	        cmocka_unit_test(test_cli__bad_adapter_replay_and_keys_refused),
	        cmocka_unit_test(test_cli__reindex_rebuilds_the_index),
	        cmocka_unit_test(test_cli__verify_catches_altered_chunk_manifest_and_commit),
	        cmocka_unit_test(test_cli__help_and_usage),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
