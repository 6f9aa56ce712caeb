/*-------------------------------------------------------------------------
 *
 * kvlsmctl.c
 *	  The kvlsm admin CLI: a libpq client that runs kvlsm's SQL functions
 *	  and prints their results as aligned tables or JSON.
 *
 *	  kvlsmctl [connection options] [--json] COMMAND [ARGS]
 *
 * Commands: stats [REL], levels REL, sstables REL, compactions [REL],
 * compact REL [LOWER UPPER], flush REL, verify REL, dump REL SSTABLE,
 * key-history REL KEY, space REL, workers, top REL.
 *
 * Connection options are libpq's (-h, -p, -U, -d, and the PG* environment
 * variables).  Every argument reaches the server as a query parameter,
 * never spliced into the SQL text.  JSON is produced by the server
 * (json_agg over the same query), so it is exact for every type.
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "libpq-fe.h"

static const char *progname = "kvlsmctl";
static bool json = false;

static void
usage(FILE *out)
{
	fprintf(out,
			"%s: administer kvlsm tables and indexes\n\n"
			"Usage:\n"
			"  %s [OPTION]... COMMAND [ARG]...\n\n"
			"Commands:\n"
			"  stats [REL]                 counters of one relation, or of every kvlsm relation\n"
			"  levels REL                  the levels of the LSM tree\n"
			"  sstables REL                the SSTables\n"
			"  space REL                   where the relation's pages go\n"
			"  compactions [REL]           recent compactions\n"
			"  flush REL                   flush the memtable now\n"
			"  compact REL [LOWER UPPER]   compact everything, or one key range (row ids of a\n"
			"                              table, first-column values of an index; '' = open)\n"
			"  verify REL                  check every page; one line per problem\n"
			"  dump REL SSTABLE            the entries of one SSTable\n"
			"  key-history REL KEY         every stored version of one key\n"
			"  workers                     the background workers\n"
			"  top REL                     refresh rates and ratios every second\n\n"
			"Options:\n"
			"  -h, --host=HOST             database server host or socket directory\n"
			"  -p, --port=PORT             database server port\n"
			"  -U, --username=USER         user name to connect as\n"
			"  -d, --dbname=DBNAME         database (or connection string) to connect to\n"
			"      --json                  print JSON instead of a table\n"
			"  -n, --iterations=N          top: stop after N refreshes (default: until interrupted)\n"
			"  -i, --interval=SECONDS      top: seconds between refreshes (default 1)\n"
			"      --help                  show this help, then exit\n\n"
			"Environment variables PGHOST, PGPORT, PGUSER, PGDATABASE and the other libpq\n"
			"settings apply as for psql.\n",
			progname, progname);
}

static void
die(PGconn *conn, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	if (conn)
		PQfinish(conn);
	exit(1);
}

/* run a query with text parameters; exits on error */
static PGresult *
run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "%s: %s", progname, PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		exit(1);
	}
	return res;
}

/* display width of a UTF-8 string (code points; good enough for our data) */
static int
text_width(const char *s)
{
	int			w = 0;

	for (; *s; s++)
		if ((*s & 0xC0) != 0x80)
			w++;
	return w;
}

/* print a result as an aligned table with a header, like psql's aligned format */
static void
print_table(PGresult *res)
{
	int			ncols = PQnfields(res);
	int			nrows = PQntuples(res);
	int		   *width = calloc(ncols, sizeof(int));
	int			c,
				r;

	for (c = 0; c < ncols; c++)
	{
		width[c] = text_width(PQfname(res, c));
		for (r = 0; r < nrows; r++)
		{
			int			w = text_width(PQgetvalue(res, r, c));

			if (w > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < ncols; c++)
		printf("%s%-*s", c ? " | " : " ", width[c], PQfname(res, c));
	printf("\n");
	for (c = 0; c < ncols; c++)
	{
		int			i;

		printf("%s", c ? "-+-" : "-");
		for (i = 0; i < width[c]; i++)
			putchar('-');
	}
	printf("-\n");
	for (r = 0; r < nrows; r++)
	{
		for (c = 0; c < ncols; c++)
		{
			const char *v = PQgetvalue(res, r, c);
			int			pad = width[c] - text_width(v);
			Oid			type = PQftype(res, c);
			bool		numeric = (type == 20 || type == 21 || type == 23 ||
								   type == 700 || type == 701 || type == 1700);

			printf("%s", c ? " | " : " ");
			if (numeric)
				printf("%*s%s", pad, "", v);
			else
				printf("%s%*s", v, pad, "");
		}
		printf("\n");
	}
	printf("(%d row%s)\n", nrows, nrows == 1 ? "" : "s");
	free(width);
}

/* run a row-returning query and print it as a table or as a JSON array */
static void
show(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res;

	if (json)
	{
		size_t		len = strlen(sql) + 128;
		char	   *wrapped = malloc(len);

		snprintf(wrapped, len,
				 "SELECT coalesce(json_agg(q), '[]') FROM (%s) q", sql);
		res = run(conn, wrapped, nparams, params);
		printf("%s\n", PQgetvalue(res, 0, 0));
		free(wrapped);
	}
	else
	{
		res = run(conn, sql, nparams, params);
		print_table(res);
	}
	PQclear(res);
}

/* run a command-like function and report it */
static void
act(PGconn *conn, const char *sql, int nparams, const char *const *params,
	const char *what, const char *rel)
{
	PGresult   *res = run(conn, sql, nparams, params);

	PQclear(res);
	if (json)
		printf("{\"relation\": \"%s\", \"done\": \"%s\"}\n", rel, what);
	else
		printf("%s: %s done\n", rel, what);
}

static volatile sig_atomic_t stop_top = 0;

static void
on_sigint(int signo)
{
	(void) signo;
	stop_top = 1;
}

static double
now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/*
 * top REL: every interval, rates since the previous sample (ingest, flushes,
 * compactions, stalls, lookups) and current ratios, one line per sample
 * (a table that scrolls, so it also works in a log or a pipe).
 */
static void
top(PGconn *conn, const char *rel, int iterations, double interval)
{
	const char *sql =
		"SELECT s.bytes_ingested, s.flushes, s.compactions, s.write_stalls, s.point_lookups,"
		"       s.memtable_bytes, s.sstables, s.compaction_debt_bytes,"
		"       coalesce(s.write_amplification, 0), coalesce(a.cache_hit_ratio, 0),"
		"       (SELECT count(*) FROM kvlsm_levels($1) l WHERE l.level = 0 AND l.sstables > 0)"
		"  FROM kvlsm_stats($1) s"
		"  LEFT JOIN kvlsm_stat_all a ON a.relation = $1::regclass";
	const char *params[1] = {rel};
	double		prev[5] = {0};
	double		prev_t = 0;
	int			i;

	signal(SIGINT, on_sigint);
	for (i = 0; !stop_top && (iterations <= 0 || i < iterations); i++)
	{
		PGresult   *res = run(conn, sql, 1, params);
		double		cur[5];
		double		t = now_seconds();
		int			k;

		for (k = 0; k < 5; k++)
			cur[k] = atof(PQgetvalue(res, 0, k));
		if (i == 0 && !json)
			printf("%-19s %12s %8s %8s %8s %10s %12s %8s %12s %6s %6s\n",
				   "relation", "ingest kB/s", "flush/s", "compact/s", "stalls/s",
				   "lookups/s", "memtable kB", "sstables", "debt kB", "w-amp", "hit%");
		if (i > 0)
		{
			double		dt = t - prev_t;
			double		rate[5];

			for (k = 0; k < 5; k++)
				rate[k] = dt > 0 ? (cur[k] - prev[k]) / dt : 0;
			if (json)
				printf("{\"relation\": \"%s\", \"ingest_bytes_per_s\": %.0f, \"flushes_per_s\": %.2f, "
					   "\"compactions_per_s\": %.2f, \"stalls_per_s\": %.2f, \"lookups_per_s\": %.0f, "
					   "\"memtable_bytes\": %s, \"sstables\": %s, \"compaction_debt_bytes\": %s, "
					   "\"write_amplification\": %s, \"cache_hit_ratio\": %s}\n",
					   rel, rate[0], rate[1], rate[2], rate[3], rate[4],
					   PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 7),
					   PQgetvalue(res, 0, 8), PQgetvalue(res, 0, 9));
			else
				printf("%-19.19s %12.0f %8.2f %8.2f %8.2f %10.0f %12.0f %8s %12.0f %6.2f %6.1f\n",
					   rel, rate[0] / 1024, rate[1], rate[2], rate[3], rate[4],
					   atof(PQgetvalue(res, 0, 5)) / 1024, PQgetvalue(res, 0, 6),
					   atof(PQgetvalue(res, 0, 7)) / 1024, atof(PQgetvalue(res, 0, 8)),
					   atof(PQgetvalue(res, 0, 9)) * 100);
			fflush(stdout);
		}
		memcpy(prev, cur, sizeof(prev));
		prev_t = t;
		PQclear(res);
		if (iterations > 0 && i + 1 >= iterations)
			break;
		usleep((useconds_t) (interval * 1e6));
	}
}

static void
need_args(int argc, int need, const char *cmd)
{
	if (argc < need)
	{
		fprintf(stderr, "%s: %s needs %d argument%s; see --help\n",
				progname, cmd, need, need == 1 ? "" : "s");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	static struct option long_options[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 'd'},
		{"iterations", required_argument, NULL, 'n'},
		{"interval", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	const char *keywords[6];
	const char *values[6];
	int			nkw = 0;
	int			c;
	int			iterations = 0;
	double		interval = 1.0;
	PGconn	   *conn;
	const char *cmd;
	char	  **args;
	int			nargs;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "h:p:U:d:n:i:", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'h':
				keywords[nkw] = "host";
				values[nkw++] = optarg;
				break;
			case 'p':
				keywords[nkw] = "port";
				values[nkw++] = optarg;
				break;
			case 'U':
				keywords[nkw] = "user";
				values[nkw++] = optarg;
				break;
			case 'd':
				keywords[nkw] = "dbname";
				values[nkw++] = optarg;
				break;
			case 'n':
				iterations = atoi(optarg);
				break;
			case 'i':
				interval = atof(optarg);
				if (interval < 0.05)
					interval = 0.05;
				break;
			case 'j':
				json = true;
				break;
			case '?':
				if (optopt == 0 && strcmp(argv[optind - 1], "--help") == 0)
				{
					usage(stdout);
					return 0;
				}
				usage(stderr);
				return 2;
		}
	}
	if (optind >= argc)
	{
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;

	keywords[nkw] = "fallback_application_name";
	values[nkw++] = progname;
	keywords[nkw] = NULL;
	values[nkw] = NULL;
	/* expand_dbname: -d may be a connection string, as in psql */
	conn = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(conn) != CONNECTION_OK)
		die(conn, "%s", PQerrorMessage(conn));

	if (strcmp(cmd, "stats") == 0)
	{
		if (nargs >= 1)
			show(conn, "SELECT $1::regclass AS relation, * FROM kvlsm_stats($1)", 1,
				 (const char *const *) args);
		else
			show(conn, "SELECT relation, access_method, memtable_bytes, sstables, flushes,"
				 " compactions, write_amplification, compaction_debt_bytes, write_stalls,"
				 " cache_hit_ratio FROM kvlsm_stat_all ORDER BY relation::text", 0, NULL);
	}
	else if (strcmp(cmd, "levels") == 0)
	{
		need_args(nargs, 1, cmd);
		show(conn, "SELECT * FROM kvlsm_levels($1)", 1, (const char *const *) args);
	}
	else if (strcmp(cmd, "sstables") == 0)
	{
		need_args(nargs, 1, cmd);
		show(conn, "SELECT * FROM kvlsm_sstables($1) ORDER BY level NULLS LAST, min_seq", 1,
			 (const char *const *) args);
	}
	else if (strcmp(cmd, "space") == 0)
	{
		need_args(nargs, 1, cmd);
		show(conn, "SELECT * FROM kvlsm_space($1)", 1, (const char *const *) args);
	}
	else if (strcmp(cmd, "compactions") == 0)
	{
		if (nargs >= 1)
			show(conn, "SELECT * FROM kvlsm_compactions WHERE relation = $1::regclass"
				 " ORDER BY started_at", 1, (const char *const *) args);
		else
			show(conn, "SELECT * FROM kvlsm_compactions ORDER BY started_at", 0, NULL);
	}
	else if (strcmp(cmd, "flush") == 0)
	{
		need_args(nargs, 1, cmd);
		act(conn, "SELECT kvlsm_flush($1)", 1, (const char *const *) args, "flush", args[0]);
	}
	else if (strcmp(cmd, "compact") == 0)
	{
		need_args(nargs, 1, cmd);
		if (nargs >= 3)
			act(conn, "SELECT kvlsm_compact_range($1, nullif($2, ''), nullif($3, ''))", 3,
				(const char *const *) args, "compaction of the range", args[0]);
		else if (nargs == 1)
			act(conn, "SELECT kvlsm_compact($1)", 1, (const char *const *) args,
				"compaction", args[0]);
		else
			need_args(nargs, 3, "compact with a range");
	}
	else if (strcmp(cmd, "verify") == 0)
	{
		PGresult   *res;

		need_args(nargs, 1, cmd);
		if (json)
			show(conn, "SELECT * FROM kvlsm_verify($1)", 1, (const char *const *) args);
		else
		{
			res = run(conn, "SELECT * FROM kvlsm_verify($1)", 1, (const char *const *) args);
			if (PQntuples(res) == 0)
				printf("%s: no problem found\n", args[0]);
			else
				print_table(res);
			c = PQntuples(res) > 0 ? 3 : 0;
			PQclear(res);
			PQfinish(conn);
			return c;			/* non-zero when there are problems, for scripts */
		}
	}
	else if (strcmp(cmd, "dump") == 0)
	{
		need_args(nargs, 2, cmd);
		/* the header, then the entries (with --json: two JSON arrays) */
		show(conn, "SELECT * FROM kvlsm_sstable_header($1, $2::bigint)", 2,
			 (const char *const *) args);
		show(conn, "SELECT * FROM kvlsm_sstable_dump($1, $2::bigint)", 2,
			 (const char *const *) args);
	}
	else if (strcmp(cmd, "key-history") == 0)
	{
		need_args(nargs, 2, cmd);
		show(conn, "SELECT * FROM kvlsm_key_history($1, $2) ORDER BY seq DESC", 2,
			 (const char *const *) args);
	}
	else if (strcmp(cmd, "workers") == 0)
		show(conn, "SELECT * FROM kvlsm_workers()", 0, NULL);
	else if (strcmp(cmd, "top") == 0)
	{
		need_args(nargs, 1, cmd);
		top(conn, args[0], iterations, interval);
	}
	else
	{
		fprintf(stderr, "%s: unknown command \"%s\"; see --help\n", progname, cmd);
		PQfinish(conn);
		return 2;
	}
	PQfinish(conn);
	return 0;
}
