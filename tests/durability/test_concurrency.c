/*
 * tests/durability/test_concurrency.c - four processes at once, each
 * proposing, promoting and rolling back on channel prod ten times. The
 * journal must end as one serial order of exactly the actions that
 * succeeded (each entry decided against the state it lands on: a move's
 * "from" is the head the entry before it left), nothing acknowledged is
 * lost, verify passes, and every loser got a clear error.
 */
#include "harness.h"

#define WORKERS 4
#define ROUNDS 10

static dh_fixture *fx;

static int group_setup(void **state)
{
	(void)state;
	fx = dh_setup("concurrency");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	dh_teardown(fx);
	return 0;
}

/*
 * One worker: round k proposes a note onto v3 (k % 3 == 0), promotes the
 * worker's newest proposal (1) or rolls prod back (2). Each line of its
 * results file is "ACTION EXIT ID"; stderr of failures goes to err.W.K.
 */
static const char worker_script[] =
        "w=$1; S=$2; R=$3; OUT=$4; V3=$5; mine=$V3\n"
        "entry() { sed -n 's/.*\"entry\": \"\\([0-9a-f]*\\)\".*/\\1/p' $1; }\n"
        "k=0\n"
        "while [ $k -lt %d ]; do\n"
        "  o=$OUT/out.$w.$k; e=$OUT/err.$w.$k\n"
        "  case $((k %% 3)) in\n"
        "  0) printf 'worker %%s round %%s\\n' $w $k > $OUT/note-$w-$k.md\n"
        "     $S -C $R propose memory --onto $V3 --add $OUT/note-$w-$k.md --key alice "
        "-m w$w.$k > $o 2> $e; rc=$?\n"
        "     id=$(tail -n1 $o); [ $rc -eq 0 ] && mine=$id\n"
        "     echo \"propose $rc $id\" >> $OUT/res.$w ;;\n"
        "  1) $S -C $R promote $mine --channel prod --key alice --json > $o 2> $e; rc=$?\n"
        "     echo \"promote $rc $(entry $o)\" >> $OUT/res.$w ;;\n"
        "  2) $S -C $R rollback prod --reason w$w.$k --key alice --json > $o 2> $e; rc=$?\n"
        "     echo \"rollback $rc $(entry $o)\" >> $OUT/res.$w ;;\n"
        "  esac\n"
        "  k=$((k + 1))\n"
        "done\n";

static void test_concurrency__four_writers_serialise(void **state)
{
	char script[4096], path[4600], out[4300], line[512];
	tu_run_result r;
	dh_state before, after;
	long entries_added;
	int w, ok = 0, conflicts = 0, refusals = 0, ok_actions[3] = {0};
	json_t *prev_channels = NULL;
	FILE *fp;

	(void)state;
	dh_fresh(fx, "shared");
	dh_read_state(fx, &before);
	snprintf(out, sizeof(out), "%s/conc", fx->work);
	tu_sh_ok(NULL, "rm -rf '%s' && mkdir -p '%s'", out, out);
	snprintf(script, sizeof(script), worker_script, ROUNDS);
	snprintf(path, sizeof(path), "%s/worker.sh", out);
	tu_write(path, script, strlen(script));
	/* All four at once; the shell waits for every one. */
	tu_sh_ok(dh_env(fx), "for w in 1 2 3 4; do sh '%s' $w '%s' '%s' '%s' %s & done; wait", path,
	         TU_SLUICE, fx->repo, out, fx->v[3]);

	for (w = 1; w <= WORKERS; w++) {
		int k = 0;
		snprintf(path, sizeof(path), "%s/res.%d", out, w);
		assert_non_null(fp = fopen(path, "r"));
		while (fgets(line, sizeof(line), fp)) {
			char action[32], id[64] = "";
			int rc;
			assert_true(sscanf(line, "%31s %d %63s", action, &rc, id) >= 2);
			if (rc == 0) {
				tu_run_result c;
				ok++;
				ok_actions[!strcmp(action, "propose")   ? 0
				           : !strcmp(action, "promote") ? 1
				                                        : 2]++;
				/* Nothing acknowledged is lost: its entry is in the journal. */
				assert_true(strlen(id) == 40);
				if (!strcmp(action, "propose"))
					c = tu_sh(NULL,
					          "git -C '%s' log --first-parent --format=%%P "
					          "refs/sluice/journal | grep -q ' %s$'",
					          fx->repo, id);
				else
					c = tu_sh(NULL,
					          "git -C '%s' log --first-parent --format=%%H "
					          "refs/sluice/journal | grep -qx %s",
					          fx->repo, id);
				if (c.status != 0)
					fprintf(stderr,
					        "acknowledged %s %s is not in the journal\n",
					        action, id);
				assert_int_equal(c.status, 0);
				tu_run_dispose(&c);
			} else {
				unsigned char *err;
				size_t len;
				snprintf(path, sizeof(path), "%s/err.%d.%d", out, w, k);
				err = tu_read(path, &len);
				assert_non_null(err);
				/* A loser: refused by a rule against the state it met, or a
				 * conflict. */
				if (!strstr((char *)err, "sluice: error: ") || (rc != 1 && rc != 4))
					fprintf(stderr, "worker %d round %d: %s exit %d: %s\n", w,
					        k, action, rc, err);
				assert_non_null(strstr((char *)err, "sluice: error: "));
				assert_true(rc == 1 || rc == 4);
				if (strstr((char *)err, "another sluice action") ||
				    strstr((char *)err, "kept changing"))
					conflicts++;
				else
					refusals++;
				free(err);
			}
			k++;
		}
		fclose(fp);
		assert_int_equal(k, ROUNDS);
	}

	/*
	 * The mirror ref names prod's head in the journal's newest entry, read
	 * with git before any other sluice command could rewrite it: writers
	 * mirror under the journal's flock, in the journal's order.
	 */
	{
		tu_run_result c =
		        tu_sh(NULL, "git -C '%s' show refs/sluice/journal:channels.json", fx->repo);
		json_t *ch;
		const char *head;

		assert_int_equal(c.status, 0);
		ch = dh_json(c.out, "channels.json");
		head = json_string_value(json_object_get(
		        json_object_get(json_object_get(ch, "channels"), "prod"), "head"));
		assert_non_null(head);
		tu_sh_ok(NULL, "test \"$(git -C '%s' rev-parse refs/sluice/channels/prod)\" = %s",
		         fx->repo, head);
		json_decref(ch);
		tu_run_dispose(&c);
	}
	dh_verify_ok(fx, "the concurrent run");
	dh_read_state(fx, &after);
	entries_added = after.entries - before.entries;
	fprintf(stderr,
	        "%d actions: %d succeeded (%d propose, %d promote, %d rollback), %d refused by a "
	        "rule, %d lost a race; journal grew by %ld\n",
	        WORKERS * ROUNDS, ok, ok_actions[0], ok_actions[1], ok_actions[2], refusals,
	        conflicts, entries_added);
	/* Exactly the successful actions were journaled. */
	assert_int_equal(entries_added, ok);
	assert_true(ok_actions[0] > 0 && ok_actions[1] + ok_actions[2] > 0);

	/*
	 * A serial order: replaying the entries oldest first, every move starts
	 * from the head the previous entry left and lands where its record says.
	 */
	r = tu_sh(NULL,
	          "git -C '%s' log --first-parent --reverse --format=%%H -n %ld "
	          "refs/sluice/journal",
	          fx->repo, entries_added + 1);
	assert_int_equal(r.status, 0);
	{
		char *save = NULL, *tok;
		for (tok = strtok_r(r.out, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
			tu_run_result c = tu_sh(NULL, "git -C '%s' show %s:channels.json", fx->repo,
			                        tok),
			              rec = tu_sh(NULL, "git -C '%s' show %s:record.json", fx->repo,
			                          tok);
			json_t *ch = dh_json(c.out, "channels.json"),
			       *rv = dh_json(rec.out, "record.json");
			const char *act = json_string_value(json_object_get(rv, "action"));
			if (prev_channels &&
			    (!strcmp(act, "promote") || !strcmp(act, "rollback"))) {
				json_t *from = json_object_get(rv, "from"),
				       *to = json_object_get(rv, "to");
				json_t *ph = json_object_get(
				        json_object_get(json_object_get(prev_channels, "channels"),
				                        "prod"),
				        "head");
				json_t *nh = json_object_get(
				        json_object_get(json_object_get(ch, "channels"), "prod"),
				        "head");
				assert_true(json_equal(from, ph));
				assert_true(json_equal(to, nh));
			}
			json_decref(prev_channels);
			prev_channels = ch;
			json_decref(rv);
			tu_run_dispose(&c);
			tu_run_dispose(&rec);
		}
	}
	json_decref(prev_channels);
	tu_run_dispose(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_concurrency__four_writers_serialise),
	};

	sluice_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
