/*
 * tests/core/test_stage.c - the objects core/stage.c and core/repo.c
 * serialise themselves instead of leaving it to libgit2 (a journal entry's
 * tree, a signed commit) must be byte for byte what libgit2 writes: the
 * same ids, in or out of an open stage.
 */
#include "testutil.h"

#include "repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef tu_repo fixture;

static int setup(void **state)
{
	fixture *f = tu_repo_new("stage");

	assert_int_equal(sluice_repo_init(&f->r, f->ctx, f->repo, NULL, 0, NULL, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	tu_repo_free(*state);
	return 0;
}

/*
 * Names whose order git decides by treating a tree's name as ending in
 * '/': "a" the tree sorts after "a.b" and "a-b" and before "a0"; "c" the
 * blob sorts before "c.d".
 */
static git_treebuilder *tricky_builder(sluice_repo *repo)
{
	static const char *blobs[] = {"a.b", "a-b", "a0", "c", "c.d", "record.json", "B2SUMS"};
	git_treebuilder *tb, *sub;
	git_oid blob, subtree;

	assert_int_equal(git_blob_create_from_buffer(&blob, repo->git, "x\n", 2), 0);
	assert_int_equal(git_treebuilder_new(&sub, repo->git, NULL), 0);
	assert_int_equal(git_treebuilder_insert(NULL, sub, "f", &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&subtree, sub), 0);
	git_treebuilder_free(sub);
	assert_int_equal(git_treebuilder_new(&tb, repo->git, NULL), 0);
	for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
		assert_int_equal(
		        git_treebuilder_insert(NULL, tb, blobs[i], &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "a", &subtree, GIT_FILEMODE_TREE), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, "c.", &subtree, GIT_FILEMODE_TREE), 0);
	assert_int_equal(
	        git_treebuilder_insert(NULL, tb, "run.sh", &blob, GIT_FILEMODE_BLOB_EXECUTABLE), 0);
	return tb;
}

static void test_stage__tree_is_libgit2s(void **state)
{
	fixture *f = *state;
	git_treebuilder *tb = tricky_builder(f->r), *empty;
	git_oid theirs, ours, staged, e_theirs, e_ours;
	git_odb *odb;

	assert_int_equal(git_treebuilder_write(&theirs, tb), 0);
	/* No stage open: written through the odb. */
	assert_int_equal(sluice_stage__tree(f->r, &ours, tb), 0);
	assert_true(git_oid_equal(&theirs, &ours));
	/* In a stage: the same id, held until commit. */
	assert_int_equal(sluice_stage__begin(f->r), 0);
	assert_int_equal(sluice_stage__tree(f->r, &staged, tb), 0);
	sluice_stage__abort(f->r);
	assert_true(git_oid_equal(&theirs, &staged));
	/* An empty tree too. */
	assert_int_equal(git_treebuilder_new(&empty, f->r->git, NULL), 0);
	assert_int_equal(git_treebuilder_write(&e_theirs, empty), 0);
	assert_int_equal(sluice_stage__tree(f->r, &e_ours, empty), 0);
	assert_true(git_oid_equal(&e_theirs, &e_ours));
	/* And the object libgit2 reads back is a tree of the same entries. */
	assert_int_equal(git_repository_odb(&odb, f->r->git), 0);
	assert_true(git_odb_exists(odb, &ours));
	git_odb_free(odb);
	git_treebuilder_free(empty);
	git_treebuilder_free(tb);
}

static void test_stage__signed_commit_is_libgit2s(void **state)
{
	fixture *f = *state;
	git_treebuilder *tb = tricky_builder(f->r);
	git_signature *who;
	git_tree *tree;
	git_buf content = {0};
	sluice_buf ours = {0};
	git_oid tree_id, theirs, mine;
	/* Several lines, as SSHSIG armour has, and no final newline. */
	const char *sig = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ\nAAAA==\n"
	                  "-----END SSH SIGNATURE-----";

	assert_int_equal(git_treebuilder_write(&tree_id, tb), 0);
	assert_int_equal(git_tree_lookup(&tree, f->r->git, &tree_id), 0);
	assert_int_equal(git_signature_new(&who, "ops", "SHA256:abc", 1796442031, 0), 0);
	assert_int_equal(git_commit_create_buffer(&content, f->r->git, who, who, NULL,
	                                          "sluice rollback by ops\n\nwith a body\n", tree,
	                                          0, NULL),
	                 0);
	assert_int_equal(
	        git_commit_create_with_signature(&theirs, f->r->git, content.ptr, sig, "gpgsig"),
	        0);
	assert_int_equal(
	        sluice_repo__commit_with_signature(f->ctx, &ours, content.ptr, content.size, sig),
	        0);
	assert_int_equal(git_odb_hash(&mine, ours.ptr, ours.len, GIT_OBJECT_COMMIT), 0);
	assert_true(git_oid_equal(&theirs, &mine));
	/* Content with no blank line after its header is refused. */
	assert_int_equal(sluice_repo__commit_with_signature(f->ctx, &ours, "tree x\n", 7, sig),
	                 SLUICE_EINVALID);
	sluice_buf__dispose(&ours);
	git_buf_dispose(&content);
	git_signature_free(who);
	git_tree_free(tree);
	git_treebuilder_free(tb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_stage__tree_is_libgit2s, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stage__signed_commit_is_libgit2s, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
