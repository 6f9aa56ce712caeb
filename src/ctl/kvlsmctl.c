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
 * variables); -W and -w control the password prompt as in psql.  Every
 * argument reaches the server as a query parameter, never spliced into the
 * SQL text.  JSON is produced by the server (json_agg over the same query),
 * so it is exact for every type; the few objects built here escape their
 * strings.
 *
 * kvlsmctl is typically run by a superuser, so, like PostgreSQL's own
 * client tools (CVE-2018-1058), it must not let a role that can create
 * objects in some schema choose what it executes: right after connecting it
 * empties search_path, and every query names the schema of each function,
 * view and operator it uses (the extension's schema, looked up in the
 * catalogs, or pg_catalog) and casts every parameter to the exact type the
 * function takes, so that no overload planted in any schema, even the
 * extension's own, matches better.  Relation arguments are interpreted once
 * under the session's default search_path, as psql would, and used as OIDs
 * from then on.
 *
 * Exit status, the same with and without --json: 0 success, 1 error (the
 * connection failed or the server reported an error), 2 usage error, 3
 * verify found problems.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define KVLSMCTL_VERSION "0.2"

/* exit statuses; scripts rely on them, in both output formats */
#define EXIT_OK			0
#define EXIT_ERROR		1
#define EXIT_USAGE		2
#define EXIT_PROBLEMS	3

/* what to do about a password, as psql's -W / -w */
typedef enum
{
	PROMPT_IF_NEEDED,
	PROMPT_ALWAYS,
	PROMPT_NEVER
} PromptMode;

static const char *progname = "kvlsmctl";
static bool json = false;

/* the extension's schema, quoted as an identifier; set once connected */
static char *ext_schema = NULL;

/* the commands, checked before connecting so usage errors exit 2 either way */
typedef struct Command
{
	const char *name;
	int			min_args;
	int			max_args;
	bool		takes_rel;		/* args[0], when present, is a relation */
} Command;

static const Command commands[] = {
	{"stats", 0, 1, true},
	{"levels", 1, 1, true},
	{"sstables", 1, 1, true},
	{"space", 1, 1, true},
	{"compactions", 0, 1, true},
	{"flush", 1, 1, true},
	{"compact", 1, 3, true},
	{"verify", 1, 1, true},
	{"dump", 2, 2, true},
	{"key-history", 2, 2, true},
	{"workers", 0, 0, false},
	{"top", 1, 1, true},
	{NULL, 0, 0, false}
};

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
			"  -w, --no-password           never prompt for a password\n"
			"  -W, --password              prompt for a password before connecting\n"
			"      --json                  print JSON instead of a table\n"
			"  -n, --iterations=N          top: stop after N refreshes (default: until interrupted)\n"
			"  -i, --interval=SECONDS      top: seconds between refreshes (default 1)\n"
			"  -V, --version               show the version, then exit\n"
			"  -?, --help                  show this help, then exit\n\n"
			"When an option is given more than once, the last one counts.  Without -w or -W,\n"
			"the password is asked for when the server wants one.  Environment variables\n"
			"PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD and the other libpq settings\n"
			"apply as for psql.\n\n"
			"Exit status (the same with --json): 0 success, 1 error (connection or server),\n"
			"2 usage error, 3 verify found problems.\n",
			progname, progname);
}

static void fatal(PGconn *conn, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* report an error and exit 1 */
static void
fatal(PGconn *conn, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (conn)
		PQfinish(conn);
	exit(EXIT_ERROR);
}

static void usage_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* report a usage error and exit 2 */
static void
usage_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see --help\n");
	exit(EXIT_USAGE);
}

static void *
xmalloc(size_t size)
{
	void	   *p = malloc(size);

	if (p == NULL)
		fatal(NULL, "out of memory");
	return p;
}

/*
 * Run a query with text parameters (a NULL value is SQL NULL); exits on
 * error.  The parameters are sent untyped, so every query must cast each of
 * them to the type it means.
 */
static PGresult *
run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "%s: %s", progname, PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		exit(EXIT_ERROR);
	}
	return res;
}

/*
 * Empty search_path, as PostgreSQL's client tools do, so that nothing
 * unqualified (in our queries, or in any SQL the extension's functions run)
 * can resolve to an object some other role created.
 */
static void
secure_search_path(PGconn *conn)
{
	PGresult   *res = run(conn, "SELECT pg_catalog.set_config('search_path', '', false)",
						  0, NULL);

	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "") != 0)
		fatal(conn, "could not clear search_path");
	PQclear(res);
}

/* find the schema kvlsm is installed in and keep it, quoted, in ext_schema */
static void
find_extension_schema(PGconn *conn)
{
	PGresult   *res;
	const char *nsp;
	char	   *quoted;

	res = run(conn,
			  "SELECT n.nspname FROM pg_catalog.pg_extension e"
			  " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
			  " WHERE e.extname OPERATOR(pg_catalog.=) 'kvlsm'::pg_catalog.name",
			  0, NULL);
	if (PQntuples(res) != 1)
		fatal(conn, "the extension kvlsm is not installed in database \"%s\"", PQdb(conn));
	nsp = PQgetvalue(res, 0, 0);
	quoted = PQescapeIdentifier(conn, nsp, strlen(nsp));
	if (quoted == NULL)
		fatal(conn, "%s", PQerrorMessage(conn));
	ext_schema = strdup(quoted);
	if (ext_schema == NULL)
		fatal(conn, "out of memory");
	PQfreemem(quoted);
	PQclear(res);
}

/*
 * The SQL of a query template: every "@extschema@" (as in extension
 * scripts) becomes the extension's quoted schema.
 */
static char *
build_sql(const char *tmpl)
{
	static const char token[] = "@extschema@";
	size_t		toklen = sizeof(token) - 1;
	size_t		nsplen = strlen(ext_schema);
	size_t		n = 0;
	const char *p;
	char	   *out;
	char	   *o;

	for (p = strstr(tmpl, token); p; p = strstr(p + toklen, token))
		n++;
	out = o = xmalloc(strlen(tmpl) + n * nsplen + 1);
	while ((p = strstr(tmpl, token)) != NULL)
	{
		memcpy(o, tmpl, p - tmpl);
		o += p - tmpl;
		memcpy(o, ext_schema, nsplen);
		o += nsplen;
		tmpl = p + toklen;
	}
	strcpy(o, tmpl);
	return out;
}

/* run a query template (see build_sql); exits on error */
static PGresult *
query(PGconn *conn, const char *tmpl, int nparams, const char *const *params)
{
	char	   *sql = build_sql(tmpl);
	PGresult   *res = run(conn, sql, nparams, params);

	free(sql);
	return res;
}

/*
 * Interpret a relation argument as psql would, under the session's default
 * search_path (as PostgreSQL's appendQualifiedRelation() does for vacuumdb
 * and its siblings), then go back to the empty one.  Returns the OID, as
 * text for the $n::pg_catalog.regclass of later queries, and in *display
 * the relation's name as that search_path shows it.  The query names
 * nothing unqualified and executes no function an other role could plant.
 */
static char *
resolve_relation(PGconn *conn, const char *name, char **display)
{
	const char *params[1] = {name};
	PGresult   *res;
	char	   *oid;

	PQclear(run(conn, "RESET search_path", 0, NULL));
	res = run(conn,
			  "SELECT $1::pg_catalog.regclass::pg_catalog.oid,"
			  " $1::pg_catalog.regclass::pg_catalog.text", 1, params);
	if (PQntuples(res) != 1)
		fatal(conn, "could not look up relation \"%s\"", name);
	oid = strdup(PQgetvalue(res, 0, 0));
	*display = strdup(PQgetvalue(res, 0, 1));
	if (oid == NULL || *display == NULL)
		fatal(conn, "out of memory");
	PQclear(res);
	secure_search_path(conn);
	return oid;
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
	int		   *width = xmalloc((ncols > 0 ? ncols : 1) * sizeof(int));
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

/*
 * Run a row-returning query template and print it as a table or as a JSON
 * array; returns the number of rows, so that the exit status can depend on
 * it the same way in both formats.  In text mode, if_empty (when not NULL)
 * is printed instead of an empty table.
 */
static int
show(PGconn *conn, const char *tmpl, int nparams, const char *const *params,
	 const char *if_empty)
{
	PGresult   *res;
	int			nrows;

	if (json)
	{
		static const char wrap[] =
			"SELECT coalesce(pg_catalog.json_agg(q), '[]'::pg_catalog.json),"
			" pg_catalog.count(*) FROM (%s) q";
		size_t		len = strlen(tmpl) + sizeof(wrap);
		char	   *wrapped = xmalloc(len);

		snprintf(wrapped, len, wrap, tmpl);
		res = query(conn, wrapped, nparams, params);
		printf("%s\n", PQgetvalue(res, 0, 0));
		nrows = atoi(PQgetvalue(res, 0, 1));
		free(wrapped);
	}
	else
	{
		res = query(conn, tmpl, nparams, params);
		nrows = PQntuples(res);
		if (nrows == 0 && if_empty)
			printf("%s\n", if_empty);
		else
			print_table(res);
	}
	PQclear(res);
	return nrows;
}

/* print s as a JSON string (RFC 8259): quoted, with the required escapes */
static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++)
	{
		unsigned char ch = (unsigned char) *s;

		switch (ch)
		{
			case '"':
				fputs("\\\"", stdout);
				break;
			case '\\':
				fputs("\\\\", stdout);
				break;
			case '\b':
				fputs("\\b", stdout);
				break;
			case '\f':
				fputs("\\f", stdout);
				break;
			case '\n':
				fputs("\\n", stdout);
				break;
			case '\r':
				fputs("\\r", stdout);
				break;
			case '\t':
				fputs("\\t", stdout);
				break;
			default:
				if (ch < 0x20)
					printf("\\u%04x", ch);
				else
					putchar(ch);
				break;
		}
	}
	putchar('"');
}

/* print a number computed here as JSON: NaN and infinities are not numbers */
static void
json_number(const char *fmt, double v)
{
	if (isfinite(v))
		printf(fmt, v);
	else
		fputs("null", stdout);
}

/* run a command-like function and report it */
static void
act(PGconn *conn, const char *tmpl, int nparams, const char *const *params,
	const char *what, const char *rel)
{
	PQclear(query(conn, tmpl, nparams, params));
	if (json)
	{
		fputs("{\"relation\": ", stdout);
		json_string(rel);
		fputs(", \"done\": ", stdout);
		json_string(what);
		fputs("}\n", stdout);
	}
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

/* sleep; a signal (SIGINT) cuts it short, which is what top wants */
static void
sleep_seconds(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t) s;
	ts.tv_nsec = (long) ((s - (double) ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/*
 * top REL: every interval, rates since the previous sample (ingest, flushes,
 * compactions, stalls, lookups) and current ratios, one line per sample
 * (a table that scrolls, so it also works in a log or a pipe).  relid is the
 * relation's OID, rel its name as given.
 */
static void
top(PGconn *conn, const char *relid, const char *rel, int iterations, double interval)
{
	/*
	 * Columns 11 to 15 are columns 5 to 9 as JSON values: the server spells
	 * a non-finite float8 as a JSON string, where its text form would not be
	 * JSON at all.
	 */
	const char *tmpl =
		"SELECT s.bytes_ingested, s.flushes, s.compactions, s.write_stalls, s.point_lookups,"
		"       s.memtable_bytes, s.sstables, s.compaction_debt_bytes,"
		"       coalesce(s.write_amplification, 0::pg_catalog.float8),"
		"       coalesce(a.cache_hit_ratio, 0::pg_catalog.float8),"
		"       (SELECT pg_catalog.count(*)"
		"          FROM @extschema@.kvlsm_levels($1::pg_catalog.regclass) l"
		"         WHERE l.level OPERATOR(pg_catalog.=) 0"
		"           AND l.sstables OPERATOR(pg_catalog.>) 0),"
		"       pg_catalog.to_json(s.memtable_bytes), pg_catalog.to_json(s.sstables),"
		"       pg_catalog.to_json(s.compaction_debt_bytes),"
		"       pg_catalog.to_json(coalesce(s.write_amplification, 0::pg_catalog.float8)),"
		"       pg_catalog.to_json(coalesce(a.cache_hit_ratio, 0::pg_catalog.float8))"
		"  FROM @extschema@.kvlsm_stats($1::pg_catalog.regclass) s"
		"  LEFT JOIN @extschema@.kvlsm_stat_all a"
		"    ON a.relation::pg_catalog.oid OPERATOR(pg_catalog.=)"
		"       $1::pg_catalog.regclass::pg_catalog.oid";
	const char *params[1] = {relid};
	double		prev[5] = {0};
	double		prev_t = 0;
	int			i;

	signal(SIGINT, on_sigint);
	for (i = 0; !stop_top && (iterations <= 0 || i < iterations); i++)
	{
		PGresult   *res = query(conn, tmpl, 1, params);
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
			{
				fputs("{\"relation\": ", stdout);
				json_string(rel);
				fputs(", \"ingest_bytes_per_s\": ", stdout);
				json_number("%.0f", rate[0]);
				fputs(", \"flushes_per_s\": ", stdout);
				json_number("%.2f", rate[1]);
				fputs(", \"compactions_per_s\": ", stdout);
				json_number("%.2f", rate[2]);
				fputs(", \"stalls_per_s\": ", stdout);
				json_number("%.2f", rate[3]);
				fputs(", \"lookups_per_s\": ", stdout);
				json_number("%.0f", rate[4]);
				printf(", \"memtable_bytes\": %s, \"sstables\": %s, \"compaction_debt_bytes\": %s, "
					   "\"write_amplification\": %s, \"cache_hit_ratio\": %s}\n",
					   PQgetvalue(res, 0, 11), PQgetvalue(res, 0, 12), PQgetvalue(res, 0, 13),
					   PQgetvalue(res, 0, 14), PQgetvalue(res, 0, 15));
			}
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
		sleep_seconds(interval);
	}
}

/*
 * Ask for a password, as PostgreSQL's simple_prompt() does: on the
 * controlling terminal with echo off, so that it works (and is not shown)
 * even when stdin and stderr are redirected; without a terminal (a daemon,
 * cron, setsid), on stdin and stderr, so that a password can be piped in.
 * Returns the line without its line end; an empty string at end of input.
 */
static char *
prompt_password(const char *prompt)
{
	FILE	   *termin = fopen("/dev/tty", "r");
	FILE	   *termout = fopen("/dev/tty", "w");
	struct termios t_orig;
	bool		echo_off = false;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;

	if (termin == NULL || termout == NULL)
	{
		if (termin)
			fclose(termin);
		if (termout)
			fclose(termout);
		termin = stdin;
		termout = stderr;
	}
	/* not a terminal (a pipe): there is no echo to turn off */
	if (tcgetattr(fileno(termin), &t_orig) == 0)
	{
		struct termios t = t_orig;

		t.c_lflag &= ~ECHO;
		echo_off = (tcsetattr(fileno(termin), TCSAFLUSH, &t) == 0);
	}
	fputs(prompt, termout);
	fflush(termout);
	len = getline(&line, &cap, termin);
	if (len < 0)
	{
		free(line);
		line = strdup("");
		if (line == NULL)
			fatal(NULL, "out of memory");
	}
	else
	{
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
	}
	if (echo_off)
	{
		tcsetattr(fileno(termin), TCSAFLUSH, &t_orig);
		/* the user's Enter was not echoed */
		fputs("\n", termout);
		fflush(termout);
	}
	if (termin != stdin)
	{
		fclose(termin);
		fclose(termout);
	}
	return line;
}

/* -n: a positive integer */
static int
parse_iterations(const char *arg)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (end == arg || *end != '\0' || errno != 0 || v < 1 || v > INT_MAX)
		usage_error("invalid number of iterations \"%s\": must be an integer from 1 to %d",
					arg, INT_MAX);
	return (int) v;
}

/* -i: positive seconds, at most a day; less than 0.05 counts as 0.05 */
static double
parse_interval(const char *arg)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(arg, &end);
	if (end == arg || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 || v > 86400)
		usage_error("invalid interval \"%s\": must be a number of seconds above 0, at most 86400",
					arg);
	return v < 0.05 ? 0.05 : v;
}

/* the command-line options, besides --json (which sets json) */
typedef struct Options
{
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;
	PromptMode	prompt;
	int			iterations;		/* top: 0 = until interrupted */
	double		interval;		/* top: seconds between refreshes */
} Options;

/*
 * Parse the options into *opts.  Returns false when the program is done,
 * with its exit status in *status: it showed the help or the version, or
 * getopt_long reported a wrong option.
 */
static bool
parse_options(int argc, char **argv, Options *opts, int *status)
{
	static struct option long_options[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 'd'},
		{"no-password", no_argument, NULL, 'w'},
		{"password", no_argument, NULL, 'W'},
		{"iterations", required_argument, NULL, 'n'},
		{"interval", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 1},
		{NULL, 0, NULL, 0}
	};
	int			c;

	*status = EXIT_OK;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage(stdout);
		return false;
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
	{
		printf("%s (kvlsm) %s\n", progname, KVLSMCTL_VERSION);
		return false;
	}
	while ((c = getopt_long(argc, argv, "h:p:U:d:wWn:i:V", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'h':
				opts->host = optarg;
				break;
			case 'p':
				opts->port = optarg;
				break;
			case 'U':
				opts->user = optarg;
				break;
			case 'd':
				opts->dbname = optarg;
				break;
			case 'w':
				opts->prompt = PROMPT_NEVER;
				break;
			case 'W':
				opts->prompt = PROMPT_ALWAYS;
				break;
			case 'n':
				opts->iterations = parse_iterations(optarg);
				break;
			case 'i':
				opts->interval = parse_interval(optarg);
				break;
			case 'j':
				json = true;
				break;
			case 'V':
				printf("%s (kvlsm) %s\n", progname, KVLSMCTL_VERSION);
				return false;
			case 1:
				usage(stdout);
				return false;
			default:
				/* getopt_long has said what is wrong, unless it was -? */
				if (optopt == '?')
				{
					usage(stdout);
					return false;
				}
				fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
				*status = EXIT_USAGE;
				return false;
		}
	}
	return true;
}

/*
 * The command 'cmd' with 'nargs' arguments, checked against its table
 * entry; a usage error exits 2 (before connecting, so whether or not the
 * server is up).
 */
static const Command *
find_command(const char *cmd, int nargs)
{
	const Command *command;

	for (command = commands; command->name; command++)
		if (strcmp(command->name, cmd) == 0)
			break;
	if (command->name == NULL)
		usage_error("unknown command \"%s\"", cmd);
	if (nargs < command->min_args)
		usage_error("%s needs %d argument%s", cmd, command->min_args,
					command->min_args == 1 ? "" : "s");
	if (nargs > command->max_args)
		usage_error("%s takes at most %d argument%s", cmd, command->max_args,
					command->max_args == 1 ? "" : "s");
	if (strcmp(cmd, "compact") == 0 && nargs == 2)
		usage_error("compact with a range needs 3 arguments");
	return command;
}

/*
 * Connect, asking for a password first with -W, or when the server wants
 * one unless -w.  Returns NULL when the connection failed (reported).
 */
static PGconn *
connect_to_server(const Options *opts)
{
	/*
	 * In psql's order: a connection string given as the database overrides
	 * -h, -p and -U, as it does there.  Each option keeps only its last
	 * value, so repeating one cannot grow anything.
	 */
	static const char *const keywords[] = {
		"host", "port", "user", "password", "dbname", "fallback_application_name", NULL
	};
	const char *values[sizeof(keywords) / sizeof(keywords[0])];
	char	   *password = NULL;
	PGconn	   *conn;

	if (opts->prompt == PROMPT_ALWAYS)
	{
		char		msg[256];

		if (opts->user)
			snprintf(msg, sizeof(msg), "Password for user %s: ", opts->user);
		else
			snprintf(msg, sizeof(msg), "Password: ");
		password = prompt_password(msg);
	}
	for (;;)
	{
		values[0] = opts->host;
		values[1] = opts->port;
		values[2] = opts->user;
		values[3] = password;
		values[4] = opts->dbname;
		values[5] = progname;
		values[6] = NULL;
		/* expand_dbname: -d may be a connection string, as in psql */
		conn = PQconnectdbParams(keywords, values, 1);
		if (conn == NULL)
			fatal(NULL, "out of memory");
		if (PQstatus(conn) == CONNECTION_BAD && PQconnectionNeedsPassword(conn) &&
			password == NULL && opts->prompt != PROMPT_NEVER)
		{
			char		msg[256];

			snprintf(msg, sizeof(msg), "Password for user %s: ", PQuser(conn));
			PQfinish(conn);
			password = prompt_password(msg);
			continue;
		}
		break;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: %s", progname, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	free(password);
	return conn;
}

/*
 * Run the command; returns the exit status.  relid is the OID of the
 * relation argument (NULL if none), reldisplay its name as the session's
 * default search_path shows it.
 *
 * Every kvlsm function and view is qualified with @extschema@, every
 * built-in function and operator with pg_catalog, and every parameter is
 * cast to the exact type of the argument it is passed as.
 */
static int
run_command(PGconn *conn, const char *cmd, char **args, int nargs,
			const char *relid, const char *reldisplay, const Options *opts)
{
	const char *params[3];
	int			status = EXIT_OK;

	params[0] = relid;
	if (strcmp(cmd, "stats") == 0)
	{
		if (nargs >= 1)
		{
			params[1] = reldisplay;
			show(conn, "SELECT $2::pg_catalog.text AS relation, s.*"
				 " FROM @extschema@.kvlsm_stats($1::pg_catalog.regclass) s", 2, params, NULL);
		}
		else
			show(conn, "SELECT relation, access_method, memtable_bytes, sstables, flushes,"
				 " compactions, write_amplification, compaction_debt_bytes, write_stalls,"
				 " cache_hit_ratio FROM @extschema@.kvlsm_stat_all"
				 " ORDER BY relation::pg_catalog.text", 0, NULL, NULL);
	}
	else if (strcmp(cmd, "levels") == 0)
		show(conn, "SELECT * FROM @extschema@.kvlsm_levels($1::pg_catalog.regclass)",
			 1, params, NULL);
	else if (strcmp(cmd, "sstables") == 0)
		show(conn, "SELECT * FROM @extschema@.kvlsm_sstables($1::pg_catalog.regclass)"
			 " ORDER BY level NULLS LAST, min_seq", 1, params, NULL);
	else if (strcmp(cmd, "space") == 0)
		show(conn, "SELECT * FROM @extschema@.kvlsm_space($1::pg_catalog.regclass)",
			 1, params, NULL);
	else if (strcmp(cmd, "compactions") == 0)
	{
		if (nargs >= 1)
			show(conn, "SELECT c.* FROM @extschema@.kvlsm_compactions c"
				 " WHERE c.relation::pg_catalog.oid OPERATOR(pg_catalog.=)"
				 " $1::pg_catalog.regclass::pg_catalog.oid"
				 " ORDER BY c.started_at", 1, params, NULL);
		else
			show(conn, "SELECT * FROM @extschema@.kvlsm_compactions ORDER BY started_at",
				 0, NULL, NULL);
	}
	else if (strcmp(cmd, "flush") == 0)
		act(conn, "SELECT @extschema@.kvlsm_flush($1::pg_catalog.regclass)", 1, params,
			"flush", args[0]);
	else if (strcmp(cmd, "compact") == 0)
	{
		if (nargs == 3)
		{
			/* an empty bound is open: SQL NULL */
			params[1] = args[1][0] ? args[1] : NULL;
			params[2] = args[2][0] ? args[2] : NULL;
			act(conn, "SELECT @extschema@.kvlsm_compact_range($1::pg_catalog.regclass,"
				" $2::pg_catalog.text, $3::pg_catalog.text)", 3, params,
				"compaction of the range", args[0]);
		}
		else
			act(conn, "SELECT @extschema@.kvlsm_compact($1::pg_catalog.regclass)", 1, params,
				"compaction", args[0]);
	}
	else if (strcmp(cmd, "verify") == 0)
	{
		char		msg[1024];

		snprintf(msg, sizeof(msg), "%s: no problem found", args[0]);
		/* non-zero when there are problems, for scripts */
		if (show(conn, "SELECT * FROM @extschema@.kvlsm_verify($1::pg_catalog.regclass, true)",
				 1, params, msg) > 0)
			status = EXIT_PROBLEMS;
	}
	else if (strcmp(cmd, "dump") == 0)
	{
		params[1] = args[1];
		/* the header, then the entries (with --json: two JSON arrays) */
		show(conn, "SELECT * FROM @extschema@.kvlsm_sstable_header($1::pg_catalog.regclass,"
			 " $2::pg_catalog.int8)", 2, params, NULL);
		show(conn, "SELECT * FROM @extschema@.kvlsm_sstable_dump($1::pg_catalog.regclass,"
			 " $2::pg_catalog.int8)", 2, params, NULL);
	}
	else if (strcmp(cmd, "key-history") == 0)
	{
		params[1] = args[1];
		show(conn, "SELECT * FROM @extschema@.kvlsm_key_history($1::pg_catalog.regclass,"
			 " $2::pg_catalog.text) ORDER BY seq DESC", 2, params, NULL);
	}
	else if (strcmp(cmd, "workers") == 0)
		show(conn, "SELECT * FROM @extschema@.kvlsm_workers()", 0, NULL, NULL);
	else if (strcmp(cmd, "top") == 0)
		top(conn, relid, args[0], opts->iterations, opts->interval);
	return status;
}

int
main(int argc, char **argv)
{
	Options		opts;
	PGconn	   *conn;
	const Command *command;
	const char *cmd;
	char	  **args;
	int			nargs;
	char	   *relid = NULL;
	char	   *reldisplay = NULL;
	int			status;

	memset(&opts, 0, sizeof(opts));
	opts.prompt = PROMPT_IF_NEEDED;
	opts.iterations = 0;
	opts.interval = 1.0;
	if (!parse_options(argc, argv, &opts, &status))
		return status;
	if (optind >= argc)
		usage_error("no command given");
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;

	/* usage errors first, so they exit 2 whether or not the server is up */
	command = find_command(cmd, nargs);

	conn = connect_to_server(&opts);
	if (conn == NULL)
		return EXIT_ERROR;

	secure_search_path(conn);
	find_extension_schema(conn);
	if (command->takes_rel && nargs >= 1)
		relid = resolve_relation(conn, args[0], &reldisplay);

	status = run_command(conn, cmd, args, nargs, relid, reldisplay, &opts);

	PQfinish(conn);
	free(relid);
	free(reldisplay);
	free(ext_schema);
	return status;
}
