/*
 * tests/core/test_version.c - versions built by hand with hostile content:
 * a correctly signed version whose state.json names paths that would escape
 * a checkout directory must be refused by checkout and reported by verify.
 * Also the signed commit's text, which sluice formats itself, against
 * libgit2's.
 */
#include "testutil.h"

#include "repo.h"
#include "version.h"

#include "sluice/keys.h"
#include "sluice/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef tu_repo fixture;

static int setup(void **state)
{
	fixture *f = tu_repo_new("version");
	const char *roles[] = {"proposer"};

	assert_int_equal(sluice_repo_init(&f->r, f->ctx, f->repo, NULL, 0, NULL, NULL), 0);
	assert_int_equal(sluice_key_new(f->r, "alice", roles, 1, NULL, NULL, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	tu_repo_free(*state);
	return 0;
}

/*
 * Commit a memory-only state whose one file sits at `path` (raw bytes, so a
 * NUL can be embedded), signed by alice and journaled like a real proposal.
 */
static void forge(fixture *f, char id[41], const char *path, size_t pathlen)
{
	sluice_repo *repo = f->r;
	sluice_key key;
	git_treebuilder *tb, *files;
	git_oid blob, st, up, sums, ftree, tree, commit;
	json_t *state, *entry;
	char *text, hex[65];
	unsigned char h[32];

	assert_int_equal(sluice_repo__signing_key(repo, &key, "alice", "proposer"), 0);
	assert_int_equal(git_blob_create_from_buffer(&blob, repo->git, "x", 1), 0);
	sluice__b2(h, "x", 1);
	sluice__hex(hex, h, 32);
	entry = json_pack("{s:s%,s:i,s:s,s:s}", "path", path, pathlen, "size", 1, "blake2b", hex,
	                  "storage", "blob");
	state = json_pack("{s:i,s:n,s:[],s:[{s:s,s:o}],s:[]}", "format", 1, "base", "adapters",
	                  "memory", "name", "n", "file", entry, "replay");
	text = json_dumps(state, JSON_SORT_KEYS);
	assert_int_equal(git_blob_create_from_buffer(&st, repo->git, text, strlen(text)), 0);
	free(text);
	json_decref(state);
	assert_int_equal(git_blob_create_from_buffer(&up, repo->git,
	                                             "{\"kind\":\"memory\",\"parent\":null}", 31),
	                 0);
	assert_int_equal(git_blob_create_from_buffer(&sums, repo->git, "", 0), 0);
	/* A tree entry for the file, under a harmless name: the attack is in state.json. */
	assert_int_equal(git_treebuilder_new(&files, repo->git, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, files, "n", &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&ftree, files), 0);
	git_treebuilder_free(files);
	assert_int_equal(git_treebuilder_new(&tb, repo->git, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "state.json", &st, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "update.json", &up, GIT_FILEMODE_BLOB),
	                 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "B2SUMS", &sums, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "files", &ftree, GIT_FILEMODE_TREE), 0);
	assert_int_equal(git_treebuilder_write(&tree, tb), 0);
	git_treebuilder_free(tb);
	assert_int_equal(
	        sluice_repo__signed_commit(repo, &commit, &key, "forged\n", &tree, NULL, 0), 0);
	git_oid_tostr(id, 41, &commit);
	{
		sluice_jstate js;
		assert_int_equal(sluice_journal__read(repo, &js), 0);
		sluice_jchange ch = {.record = json_pack("{s:s,s:n,s:s}", "version", id, "parent",
		                                         "kind", "memory"),
		                     .extra_parent = commit,
		                     .has_extra = 1};
		assert_int_equal(sluice_journal__commit(repo, NULL, &key, "propose", &js, &ch), 0);
		sluice_journal__change_dispose(&ch);
		sluice_journal__dispose(&js);
	}
	sluice_key__dispose(&key);
}

static void assert_checkout_refused(fixture *f, const char *path, size_t len, const char *why)
{
	char id[41], dir[4200], escape[4200];
	char *report = NULL;
	struct stat st;
	int error;

	forge(f, id, path, len);
	snprintf(dir, sizeof(dir), "%s/co", f->work);
	error = sluice_version_checkout(f->r, id, dir, &report);
	assert_int_equal(error, SLUICE_ECORRUPT);
	assert_non_null(strstr(sluice_ctx_errmsg(f->ctx), why));
	assert_null(report);
	/* Nothing was written: not the target, not where the path points. */
	assert_int_not_equal(lstat(dir, &st), 0);
	snprintf(escape, sizeof(escape), "%s/escaped", f->work);
	assert_int_not_equal(lstat(escape, &st), 0);
	/* verify names the problem too. */
	assert_int_equal(sluice_repo_verify(f->r, &report), SLUICE_ECORRUPT);
	assert_non_null(strstr(report, why));
	sluice_free(report);
}

static void test_version__checkout_refuses_dotdot(void **state)
{
	assert_checkout_refused(*state, "../escaped", 10, "escapes the directory");
}

static void test_version__checkout_refuses_absolute(void **state)
{
	fixture *f = *state;
	char abs[4200];

	snprintf(abs, sizeof(abs), "%s/escaped", f->work);
	assert_checkout_refused(f, abs, strlen(abs), "absolute path");
}

static void test_version__checkout_refuses_nul(void **state)
{
	assert_checkout_refused(*state, "memory/a\0b", 10, "NUL");
}

static void test_version__checkout_refuses_long_component(void **state)
{
	char name[300];

	memcpy(name, "memory/", 7);
	memset(name + 7, 'a', 256);
	name[263] = '\0';
	assert_checkout_refused(*state, name, 263, "longer than 255");
}

static void test_version__path_rules(void **state)
{
	const char *why;
	(void)state;

	assert_true(sluice__path_safe("base/model.safetensors", 22, &why));
	assert_false(sluice__path_safe("a/../b", 6, &why));
	assert_false(sluice__path_safe("./a", 3, &why));
	assert_false(sluice__path_safe("a//b", 4, &why));
	assert_false(sluice__path_safe("a\\b", 3, &why));
	assert_false(sluice__path_safe("", 0, &why));
	assert_false(sluice__path_safe("a\xc0\xaf", 3, &why));
}

/*
 * sluice_repo__signed_commit formats the commit's text itself: it must be
 * byte for byte what libgit2 makes of the same tree, parents, signature and
 * message (the part the signature covers), and the commit must read back.
 */
static void test_version__commit_text_is_libgit2s(void **state)
{
	fixture *f = *state;
	sluice_repo *repo = f->r;
	sluice_key key;
	git_treebuilder *tb;
	git_oid blob, tree, first, second, parents[2];
	git_commit *c = NULL;
	const git_commit *pc[2] = {0};
	git_tree *t = NULL;
	git_buf sig = {0}, data = {0}, want = {0};
	const char *msg = "sluice test by alice\n\nwith a body\n";

	assert_int_equal(sluice_repo__signing_key(repo, &key, "alice", "proposer"), 0);
	assert_int_equal(git_blob_create_from_buffer(&blob, repo->git, "x", 1), 0);
	assert_int_equal(git_treebuilder_new(&tb, repo->git, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "x", &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&tree, tb), 0);
	git_treebuilder_free(tb);
	assert_int_equal(sluice_repo__signed_commit(repo, &first, &key, msg, &tree, NULL, 0), 0);
	parents[0] = first;
	assert_int_equal(git_reference_name_to_id(&parents[1], repo->git, "refs/sluice/journal"),
	                 0);
	assert_int_equal(sluice_repo__signed_commit(repo, &second, &key, msg, &tree, parents, 2),
	                 0);
	/* What the signature covers, against libgit2's text from the commit's own fields. */
	assert_int_equal(git_commit_extract_signature(&sig, &data, repo->git, &second, "gpgsig"),
	                 0);
	assert_int_equal(git_commit_lookup(&c, repo->git, &second), 0);
	assert_int_equal(git_commit_tree(&t, c), 0);
	assert_int_equal(git_commit_parentcount(c), 2);
	assert_int_equal(git_commit_parent((git_commit **)&pc[0], c, 0), 0);
	assert_int_equal(git_commit_parent((git_commit **)&pc[1], c, 1), 0);
	assert_true(git_oid_equal(git_commit_id(pc[0]), &first));
	assert_int_equal(git_commit_create_buffer(&want, repo->git, git_commit_author(c),
	                                          git_commit_committer(c), NULL, msg, t, 2, pc),
	                 0);
	assert_int_equal(data.size, want.size);
	assert_memory_equal(data.ptr, want.ptr, want.size);
	assert_string_equal(git_commit_message(c), msg);
	assert_string_equal(git_commit_author(c)->name, "alice");
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	git_buf_dispose(&want);
	git_commit_free((git_commit *)pc[0]);
	git_commit_free((git_commit *)pc[1]);
	git_tree_free(t);
	git_commit_free(c);
	sluice_key__dispose(&key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_version__path_rules),
	        cmocka_unit_test_setup_teardown(test_version__commit_text_is_libgit2s, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_version__checkout_refuses_dotdot, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_version__checkout_refuses_absolute, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_version__checkout_refuses_nul, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_version__checkout_refuses_long_component,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
