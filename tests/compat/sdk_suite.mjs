// Runs StackOne's official TypeScript SDK (@stackone/stackone-client-ts, pinned in package.json)
// against a running lmsgate server, changing nothing but `serverURL`.
//
// Every check calls real SDK methods and asserts on what they return; every one of the SDK's
// 24 `sdk.lms.*` methods is covered by at least one check, and a method passes only when every
// check that uses it passes. Errors must surface as the SDK's typed classes
// (BadRequestResponse, NotFoundResponse, ...), never as ResponseValidationError or SDKError.
//
// Environment:
//   LMSGATE_URL                     base URL of the server under test (required)
//   LMSGATE_API_KEY                 an API key of that server (required)
//   LMSGATE_ACCOUNT_ID              a `local` linked account (required)
//   LMSGATE_DISABLED_ACCOUNT_ID     a disabled linked account (the 412 check)
//   LMSGATE_XAPI_ACCOUNT_ID         an `xapi` account; its connector lacks content, course, user and
//                                   assignment operations (the 501 check; none of them calls the LRS)
//   LMSGATE_UNINSTALLED_ACCOUNT_ID  an account whose provider has no connector (the 501 check)
//   LMSGATE_RATE_LIMITED_URL        a second server with a small per-minute limit (the 429 check);
//                                   it must accept the same key and account id
//   COMPAT_RESULTS                  where to write the results (default: sdk-results.json)
// Each check that needs one of the last five fails with a clear message when it is missing.
//
// Output: one JSON line per check and per method on stdout, and the results file. The exit
// code is 0 only when every check passed.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { StackOne } from "@stackone/stackone-client-ts";
import * as errors from "@stackone/stackone-client-ts/sdk/models/errors/index.js";

const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@stackone/stackone-client-ts/package.json", import.meta.url)),
).version;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`sdk_suite: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const BASE = required("LMSGATE_URL");
const KEY = required("LMSGATE_API_KEY");
const ACCOUNT = required("LMSGATE_ACCOUNT_ID");
const RESULTS = process.env.COMPAT_RESULTS || "sdk-results.json";

// The SDK methods, with the HTTP operation each one calls.
const METHODS = {
  batchUpsertContent: "POST /unified/lms/content/batch",
  createUserAssignment: "POST /unified/lms/users/{id}/assignments",
  createUserCompletion: "POST /unified/lms/users/{id}/completions",
  deleteUserCompletion: "DELETE /unified/lms/users/{id}/completions/{subResourceId}",
  getAssignment: "GET /unified/lms/assignments/{id}",
  getCategory: "GET /unified/lms/categories/{id}",
  getCompletion: "GET /unified/lms/completions/{id}",
  getContent: "GET /unified/lms/content/{id}",
  getCourse: "GET /unified/lms/courses/{id}",
  getSkill: "GET /unified/lms/skills/{id}",
  getUser: "GET /unified/lms/users/{id}",
  getUserAssignment: "GET /unified/lms/users/{id}/assignments/{subResourceId}",
  getUserCompletion: "GET /unified/lms/users/{id}/completions/{subResourceId}",
  listAssignments: "GET /unified/lms/assignments",
  listCategories: "GET /unified/lms/categories",
  listCompletions: "GET /unified/lms/completions",
  listContent: "GET /unified/lms/content",
  listCourses: "GET /unified/lms/courses",
  listSkills: "GET /unified/lms/skills",
  listUserAssignments: "GET /unified/lms/users/{id}/assignments",
  listUserCompletions: "GET /unified/lms/users/{id}/completions",
  listUsers: "GET /unified/lms/users",
  updateContent: "PATCH /unified/lms/content/{id}",
  upsertContent: "PUT /unified/lms/content",
};

// Error statuses the SDK maps to a class but that lmsgate has no honest way to produce from
// the embedded `local` LMS; listed so the report says why they are not exercised.
const NOT_EXERCISED = {
  403: ["ForbiddenResponse", "lmsgate never answers 403: an API key may use every account of its project"],
  408: ["RequestTimedOutResponse", "only for a provider that times out; the embedded local LMS has no remote provider"],
  422: ["UnprocessableEntityResponse", "no operation of the local LMS refuses a well-formed request with 422"],
  500: ["InternalServerErrorResponse", "only for an unexpected server fault"],
  502: ["BadGatewayResponse", "only for an unusable provider answer; the local LMS has no remote provider"],
};

const sdk = new StackOne({ serverURL: BASE, security: { username: KEY, password: "" } });
const acct = { xAccountId: ACCOUNT };
// Unique per run, so the suite can run twice against the same server and count only its own data.
const RUN = `r${Date.now().toString(36)}`;
const state = {};

// ---------------------------------------------------------------- helpers

const checks = [];
function check(name, methods, fn) {
  for (const m of methods) assert.ok(m in METHODS, `unknown SDK method ${m}`);
  checks.push({ name, methods, fn });
}

/** Calls lmsgate's own extensions (seeding learners and courses), which the SDK cannot do. */
async function lmsgate(method, path, body) {
  const resp = await fetch(BASE + path, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${KEY}:`).toString("base64")}`,
      "x-account-id": ACCOUNT,
      "content-type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`seeding ${method} ${path} answered ${resp.status}: ${text}`);
  return JSON.parse(text);
}

/** Walks every page with `for await`; returns the pages' item arrays. */
async function allPages(first, key) {
  const pages = [];
  for await (const page of first) {
    assert.equal(page.statusCode, 200);
    const body = page[key];
    assert.ok(body, `page has no ${key}`);
    assert.ok(Array.isArray(body.data), `${key}.data is not an array`);
    pages.push(body.data);
  }
  return pages;
}

const flat = (pages) => pages.flat();
const ids = (items) => items.map((i) => i.id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The call must fail with the SDK's typed error class `cls` for `status`. */
async function expectError(promise, cls, status) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${cls.name} (${status}), but the call succeeded`);
  if (error instanceof errors.ResponseValidationError || error instanceof errors.SDKError) {
    assert.fail(`expected ${cls.name}, got ${error.constructor.name}: ${error.message}`);
  }
  assert.ok(error instanceof cls, `expected ${cls.name}, got ${error?.constructor?.name}: ${error?.message}`);
  assert.equal(error.statusCode, status);
  assert.equal(error.data$.statusCode, status);
  assert.ok(error.data$.timestamp instanceof Date && !Number.isNaN(error.data$.timestamp.getTime()));
  assert.ok(typeof error.message === "string" && error.message.length > 0);
  return error;
}

function assertDate(value, label) {
  assert.ok(value instanceof Date && !Number.isNaN(value.getTime()), `${label} is not a Date: ${value}`);
}

// ---------------------------------------------------------------- seed data

const LEARNERS = ["ada", "bob", "cy", "dee", "eve", "fay", "gus"].map((n) => `${RUN}-${n}`);
const [ADA, BOB, CY] = LEARNERS;
const CONTENT_REF = `${RUN}-sql-intro`;
const OTHER_REF = `${RUN}-sql-joins`;
const CATEGORY = `${RUN} Databases`;
const SKILL = `${RUN} SQL`;
const BATCH = 62;
const COURSES = 7;

check("seed: learners and courses through lmsgate's extensions", [], async (note) => {
  for (const [i, id] of LEARNERS.entries()) {
    await lmsgate("PUT", `/unified/lms/users/${encodeURIComponent(id)}`, {
      name: `Learner ${i}`, email: `${id}@example.test`, external_reference: `EMP-${RUN}-${i}`, active: true,
    });
  }
  note(`${LEARNERS.length} learners created with PUT /unified/lms/users/{id}`);
});

// ---------------------------------------------------------------- content

check("upsertContent creates content, then replaces it by external_reference", ["upsertContent", "getContent"],
  async (note) => {
    const dto = {
      externalReference: CONTENT_REF,
      title: "Intro to SQL",
      description: "Tables, rows and the first SELECT.",
      contentUrl: "https://learn.example.test/sql-intro",
      coverUrl: "https://learn.example.test/sql-intro.png",
      contentType: { value: "video" },
      duration: "PT1H30M",
      languages: [{ value: "en_GB" }],
      tags: ["sql", "databases"],
      authors: [{ id: "a-1", name: "Grace" }],
      active: true,
      order: 1,
      categories: [{ name: CATEGORY }],
      skills: [{ name: SKILL }],
    };
    const first = await sdk.lms.upsertContent({ ...acct, lmsUpsertContentRequestDto: dto });
    assert.equal(first.statusCode, 201);
    assert.equal(first.upsertResult.statusCode, 201);
    assertDate(first.upsertResult.timestamp, "timestamp");
    const id = first.upsertResult.data.id;
    assert.ok(typeof id === "string" && id.length > 0);
    assert.equal(first.upsertResult.data.externalReference, CONTENT_REF);

    const again = await sdk.lms.upsertContent({
      ...acct, lmsUpsertContentRequestDto: { ...dto, title: "Intro to SQL, second edition" },
    });
    assert.equal(again.statusCode, 201);
    assert.equal(again.upsertResult.data.id, id, "an upsert of the same external_reference must keep the id");
    assert.notEqual(again.upsertResult.message, first.upsertResult.message);

    const got = (await sdk.lms.getContent({ ...acct, id })).contentResult.data;
    assert.equal(got.id, id);
    assert.equal(got.externalReference, CONTENT_REF);
    assert.equal(got.title, "Intro to SQL, second edition");
    assert.equal(got.description, dto.description);
    assert.equal(got.contentUrl, dto.contentUrl);
    assert.equal(got.contentType.value, "video");
    assert.equal(got.duration, "PT1H30M");
    assert.deepEqual(got.languages.map((l) => l.value), ["en_GB"]);
    assert.deepEqual(got.tags, ["sql", "databases"]);
    assert.equal(got.authors[0].name, "Grace");
    assert.equal(got.active, true);
    assert.equal(got.categories[0].name, CATEGORY);
    assert.equal(got.skills[0].name, SKILL);
    assertDate(got.createdAt, "createdAt");
    assertDate(got.updatedAt, "updatedAt");
    assert.ok(got.updatedAt >= got.createdAt);
    state.contentId = id;
    state.categoryId = got.categories[0].id;
    state.skillId = got.skills[0].id;
    note("201 UpsertResult; the second upsert kept the id and replaced the title; getContent returned every field sent");
  });

check("updateContent changes only the fields it sends", ["updateContent", "getContent"], async (note) => {
  const res = await sdk.lms.updateContent({ ...acct, id: state.contentId, lmsCreateContentRequestDto: { title: "SQL basics" } });
  assert.equal(res.statusCode, 201);
  assert.equal(res.updateResult.statusCode, 201);
  assertDate(res.updateResult.timestamp, "timestamp");
  const got = (await sdk.lms.getContent({ ...acct, id: state.contentId })).contentResult.data;
  assert.equal(got.title, "SQL basics");
  assert.equal(got.description, "Tables, rows and the first SELECT.", "a field not sent must not change");
  assert.equal(got.duration, "PT1H30M");
  assert.equal(got.externalReference, CONTENT_REF);
  note("201 UpdateResult (SDK 4.28.0 only); title changed, the other fields kept");
});

check("batchUpsertContent stores the valid items and reports the invalid one", ["batchUpsertContent", "listContent"],
  async (note) => {
    const items = [];
    for (let i = 0; i < BATCH; i++) {
      items.push({
        externalReference: `${RUN}-batch-${String(i).padStart(3, "0")}`,
        title: `Batch item ${i}`,
        duration: `PT${i + 1}M`,
        active: i % 2 === 0,
        categories: [{ name: `${RUN} topic ${i % 8}` }],
        skills: [{ name: `${RUN} skill ${i % 8}` }],
      });
    }
    const bad = 5;
    items.splice(bad, 0, { externalReference: `${RUN}-batch-bad`, title: "Bad duration", duration: "ninety minutes" });
    const res = await sdk.lms.batchUpsertContent({ ...acct, lmsBatchUpsertContentRequestDto: { items } });
    assert.equal(res.statusCode, 202);
    const result = res.batchResultApiModel;
    assert.equal(result.statusCode, 202);
    assertDate(result.timestamp, "timestamp");
    assert.equal(result.errors.length, BATCH + 1);
    assert.ok(result.errors[bad].length > 0 && result.errors[bad].join(" ").includes("duration"),
      `item ${bad} should be refused for its duration: ${JSON.stringify(result.errors[bad])}`);
    assert.ok(result.errors.every((e, i) => i === bad || e.length === 0));

    const pages = await allPages(await sdk.lms.listContent({ ...acct, pageSize: "10" }), "contentPaginated");
    const mine = flat(pages).filter((c) => c.externalReference?.startsWith(`${RUN}-batch-`));
    assert.equal(mine.length, BATCH, "every valid batch item is listed once");
    assert.ok(!mine.some((c) => c.externalReference === `${RUN}-batch-bad`));
    assert.equal(new Set(ids(mine)).size, BATCH);
    assert.ok(pages.length > 3, `expected more than 3 pages, got ${pages.length}`);
    state.batchPages = pages.length;
    note(`202 BatchResultApiModel with errors[${bad}] naming the bad duration; listContent walked ${BATCH} batch items over more than 3 pages of 10 with for await`);
  });

check("listContent filter[active] returns only active content", ["listContent"], async (note) => {
  const pages = await allPages(await sdk.lms.listContent({ ...acct, pageSize: "25", filter: { active: true } }),
    "contentPaginated");
  const items = flat(pages);
  assert.ok(items.length > 0);
  assert.ok(items.every((c) => c.active === true || c.active === "true"), "an inactive item was listed");
  const mine = items.filter((c) => c.externalReference?.startsWith(`${RUN}-batch-`));
  assert.equal(mine.length, BATCH / 2);
  assert.ok(items.some((c) => c.id === state.contentId));
  note(`filter[active]=true kept the ${BATCH / 2} active batch items and dropped the inactive ones`);
});

// ---------------------------------------------------------------- courses

check("getCourse returns a seeded course and the content it holds", ["getCourse", "listCourses", "getContent"], async (note) => {
  for (let i = 0; i < COURSES; i++) {
    await lmsgate("PUT", "/unified/lms/courses", {
      external_reference: `${RUN}-course-${i}`,
      title: `Course ${i}`,
      active: i % 3 !== 0,
      duration: "PT2H",
      content_external_references: i === 1 ? [CONTENT_REF] : [],
    });
  }
  const listed = await sdk.lms.listCourses({ ...acct, filter: { externalReference: `${RUN}-course-1` } });
  const [course] = listed.coursePaginated.data;
  assert.equal(listed.coursePaginated.data.length, 1);
  const got = (await sdk.lms.getCourse({ ...acct, id: course.id })).courseResult.data;
  assert.equal(got.id, course.id);
  assert.equal(got.title, "Course 1");
  assert.equal(got.externalReference, `${RUN}-course-1`);
  assert.equal(got.duration, "PT2H");
  assert.deepEqual(got.contentIds, [state.contentId]);
  assert.equal(got.active, true);
  const content = (await sdk.lms.getContent({ ...acct, id: state.contentId })).contentResult.data;
  assert.deepEqual(content.courseIds, [course.id]);
  state.courseId = course.id;
  state.courseRef = `${RUN}-course-1`;
  note("courses seeded with PUT /unified/lms/courses; getCourse lists the content's id and getContent the course's id");
});

check("listCourses pages with for await and filters by external_reference and active", ["listCourses"],
  async (note) => {
    const pages = await allPages(await sdk.lms.listCourses({ ...acct, pageSize: "2" }), "coursePaginated");
    const mine = flat(pages).filter((c) => c.externalReference?.startsWith(`${RUN}-course-`));
    assert.equal(mine.length, COURSES);
    assert.ok(pages.length > 3, `expected more than 3 pages, got ${pages.length}`);
    const active = flat(await allPages(await sdk.lms.listCourses({ ...acct, filter: { active: true } }),
      "coursePaginated")).filter((c) => c.externalReference?.startsWith(`${RUN}-course-`));
    const expected = [...Array(COURSES).keys()].filter((i) => i % 3 !== 0).length;
    assert.equal(active.length, expected);
    assert.ok(active.every((c) => c.active === true || c.active === "true"));
    const one = (await sdk.lms.listCourses({ ...acct, filter: { externalReference: `${RUN}-course-4` } })).coursePaginated;
    assert.deepEqual(one.data.map((c) => c.title), ["Course 4"]);
    note(`${COURSES} courses over more than 3 pages of 2; filter[active] and filter[external_reference] applied`);
  });

// ---------------------------------------------------------------- taxonomy

check("listCategories and getCategory see the categories named on content", ["listCategories", "getCategory"],
  async (note) => {
    const pages = await allPages(await sdk.lms.listCategories({ ...acct, pageSize: "2" }), "categoriesPaginated");
    const mine = flat(pages).filter((c) => c.name?.startsWith(RUN));
    assert.equal(mine.length, 9, `expected the 9 categories this run named, got ${mine.length}`);
    assert.ok(pages.length > 3);
    const listed = mine.find((c) => c.name === CATEGORY);
    assert.equal(listed.id, state.categoryId);
    const got = (await sdk.lms.getCategory({ ...acct, id: state.categoryId })).categoryResult.data;
    assert.equal(got.name, CATEGORY);
    assert.equal(got.active, true);
    assert.equal(got.id, state.categoryId);
    note("categories created by content upserts are listed (more than 3 pages of 2) and fetched by id");
  });

check("listSkills and getSkill see the skills named on content", ["listSkills", "getSkill"], async (note) => {
  const pages = await allPages(await sdk.lms.listSkills({ ...acct, pageSize: "2" }), "skillsPaginated");
  const mine = flat(pages).filter((s) => s.name?.startsWith(RUN));
  assert.equal(mine.length, 9);
  assert.ok(pages.length > 3);
  const got = (await sdk.lms.getSkill({ ...acct, id: state.skillId })).skillResult.data;
  assert.equal(got.name, SKILL);
  assert.equal(got.id, state.skillId);
  note("skills created by content upserts are listed (more than 3 pages of 2) and fetched by id");
});

// ---------------------------------------------------------------- users

check("getUser returns a seeded learner", ["getUser"], async (note) => {
  const got = (await sdk.lms.getUser({ ...acct, id: ADA })).userResult.data;
  assert.equal(got.id, ADA);
  assert.equal(got.name, "Learner 0");
  assert.equal(got.email, `${ADA}@example.test`);
  assert.equal(got.externalReference, `EMP-${RUN}-0`);
  assert.equal(got.active, true);
  assertDate(got.createdAt, "createdAt");
  note("name, email, external_reference, active and dates as seeded");
});

check("listUsers pages with for await and filters by email and updated_after", ["listUsers"], async (note) => {
  const pages = await allPages(await sdk.lms.listUsers({ ...acct, pageSize: "2" }), "usersPaginated");
  const mine = flat(pages).filter((u) => u.id.startsWith(`${RUN}-`));
  assert.equal(mine.length, LEARNERS.length);
  assert.ok(pages.length > 3);

  const byEmail = (await sdk.lms.listUsers({ ...acct, filter: { email: `${BOB}@example.test` } })).usersPaginated;
  assert.deepEqual(ids(byEmail.data), [BOB]);

  await sleep(20);
  const cutoff = new Date();
  await sleep(20);
  const late = [`${RUN}-late-1`, `${RUN}-late-2`];
  for (const id of late) await lmsgate("PUT", `/unified/lms/users/${id}`, { name: id });
  const recent = flat(await allPages(await sdk.lms.listUsers({ ...acct, filter: { updatedAfter: cutoff } }),
    "usersPaginated"));
  assert.deepEqual(recent.map((u) => u.id).filter((id) => id.startsWith(RUN)).sort(), late);
  assert.ok(recent.every((u) => u.updatedAt > cutoff));
  note(`${LEARNERS.length} learners over more than 3 pages of 2; filter[email] found one; filter[updated_after] kept only the 2 learners written after the cutoff`);
});

// ---------------------------------------------------------------- completions

const COMPLETED_AT = new Date("2024-03-01T10:15:30.000Z");

check("createUserCompletion records a completion that getUserCompletion and getCompletion return",
  ["createUserCompletion", "getUserCompletion", "getCompletion"], async (note) => {
    const res = await sdk.lms.createUserCompletion({
      ...acct, id: ADA,
      lmsCreateCompletionRequestDto: {
        learningObjectExternalReference: CONTENT_REF, completedAt: COMPLETED_AT, timeSpent: "PT45M",
        result: { value: "Pass", sourceValue: "passed" },
      },
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.createResult.statusCode, 201);
    assertDate(res.createResult.timestamp, "timestamp");
    const id = res.createResult.data.id;
    assert.ok(typeof id === "string" && id.length > 0);

    const got = (await sdk.lms.getUserCompletion({ ...acct, id: ADA, subResourceId: id })).completionResult.data;
    assert.equal(got.id, id);
    assert.equal(got.userId, ADA);
    assert.equal(got.learningObjectExternalReference, CONTENT_REF);
    assert.equal(got.learningObjectId, state.contentId, "the reference resolves to the content's id");
    assert.equal(got.learningObjectType.value, "content");
    assert.equal(got.completedAt.toISOString(), COMPLETED_AT.toISOString());
    assert.equal(got.timeSpent, "PT45M");
    assert.equal(got.result.value, "Pass");
    assert.equal(got.result.sourceValue, "passed");
    const global = (await sdk.lms.getCompletion({ ...acct, id })).completionResult.data;
    assert.equal(global.id, id);
    assert.equal(global.userId, ADA);

    const repeat = await sdk.lms.createUserCompletion({
      ...acct, id: ADA,
      lmsCreateCompletionRequestDto: { learningObjectExternalReference: CONTENT_REF, completedAt: COMPLETED_AT },
    });
    assert.equal(repeat.createResult.data.id, id, "the same learner, object and time is the same completion");
    state.completionId = id;
    note("201 CreateResult; the record reads back with the content's id and type; posting it again returns the same id");
  });

check("createUserCompletion maps the deprecated contentExternalReference", ["createUserCompletion", "getUserCompletion"],
  async (note) => {
    const res = await sdk.lms.createUserCompletion({
      ...acct, id: ADA, lmsCreateCompletionRequestDto: { contentExternalReference: OTHER_REF, completedAt: COMPLETED_AT },
    });
    assert.equal(res.statusCode, 201);
    const got = (await sdk.lms.getUserCompletion({ ...acct, id: ADA, subResourceId: res.createResult.data.id }))
      .completionResult.data;
    assert.equal(got.learningObjectExternalReference, OTHER_REF);
    note("content_external_reference (deprecated) is stored as learning_object_external_reference");
  });

check("listUserCompletions and listCompletions page with for await and filter by updated_after",
  ["listUserCompletions", "listCompletions", "createUserCompletion"], async (note) => {
    for (let i = 0; i < 9; i++) {
      await sdk.lms.createUserCompletion({
        ...acct, id: BOB,
        lmsCreateCompletionRequestDto: { learningObjectExternalReference: `${RUN}-batch-${String(i).padStart(3, "0")}`,
          completedAt: new Date(Date.UTC(2024, 0, i + 1)) },
      });
    }
    const userPages = await allPages(await sdk.lms.listUserCompletions({ ...acct, id: BOB, pageSize: "2" }),
      "completionsPaginated");
    assert.equal(flat(userPages).length, 9);
    assert.ok(flat(userPages).every((c) => c.userId === BOB));
    assert.ok(userPages.length > 3);

    const allCompletions = await allPages(await sdk.lms.listCompletions({ ...acct, pageSize: "3" }),
      "completionsPaginated");
    const mine = flat(allCompletions).filter((c) => c.learningObjectExternalReference?.startsWith(RUN));
    assert.equal(mine.length, 11, "2 for ada and 9 for bob");
    assert.ok(allCompletions.length > 3);

    await sleep(20);
    const cutoff = new Date();
    await sleep(20);
    const late = [];
    for (let i = 0; i < 2; i++) {
      const r = await sdk.lms.createUserCompletion({
        ...acct, id: BOB,
        lmsCreateCompletionRequestDto: { learningObjectExternalReference: `${RUN}-late-${i}`, completedAt: COMPLETED_AT },
      });
      late.push(r.createResult.data.id);
    }
    // listUserCompletions sends the filter flattened (updated_after=...), listCompletions as filter[updated_after].
    const recentUser = flat(await allPages(await sdk.lms.listUserCompletions({ ...acct, id: BOB, filter: { updatedAfter: cutoff } }),
      "completionsPaginated"));
    assert.deepEqual(ids(recentUser).sort(), [...late].sort());
    const recentAll = flat(await allPages(await sdk.lms.listCompletions({ ...acct, filter: { updatedAfter: cutoff } }),
      "completionsPaginated"));
    assert.deepEqual(ids(recentAll).sort(), [...late].sort());
    note("9 completions over more than 3 pages of 2; filter updated_after (flattened and filter[...] forms) kept only the 2 written after the cutoff");
  });

check("deleteUserCompletion removes a completion", ["deleteUserCompletion", "getUserCompletion", "listUserCompletions"],
  async (note) => {
    const made = await sdk.lms.createUserCompletion({
      ...acct, id: CY, lmsCreateCompletionRequestDto: { learningObjectExternalReference: CONTENT_REF, completedAt: COMPLETED_AT },
    });
    const id = made.createResult.data.id;
    const before = (await sdk.lms.listUserCompletions({ ...acct, id: CY })).completionsPaginated.data;
    assert.deepEqual(ids(before), [id]);
    const res = await sdk.lms.deleteUserCompletion({ ...acct, id: CY, subResourceId: id });
    assert.equal(res.statusCode, 200);
    assert.equal(res.deleteResult.statusCode, 200);
    assertDate(res.deleteResult.timestamp, "timestamp");
    await expectError(sdk.lms.getUserCompletion({ ...acct, id: CY, subResourceId: id }), errors.NotFoundResponse, 404);
    const after = (await sdk.lms.listUserCompletions({ ...acct, id: CY })).completionsPaginated.data;
    assert.deepEqual(after, []);
    await expectError(sdk.lms.deleteUserCompletion({ ...acct, id: CY, subResourceId: id }), errors.NotFoundResponse, 404);
    note("200 DeleteResult; afterwards get and a second delete give NotFoundResponse and the list is empty");
  });

// ---------------------------------------------------------------- assignments

const DUE = new Date("2024-06-30T17:00:00.000Z");

check("createUserAssignment assigns a course that getUserAssignment and getAssignment return",
  ["createUserAssignment", "getUserAssignment", "getAssignment"], async (note) => {
    const res = await sdk.lms.createUserAssignment({
      ...acct, id: ADA,
      lmsCreateAssignmentRequestDto: {
        learningObjectExternalReference: state.courseRef, status: { value: "in_progress" }, progress: 40, dueDate: DUE,
        createdAt: new Date("2024-02-01T09:00:00.000Z"),
      },
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.createResult.statusCode, 201);
    const id = res.createResult.data.id;
    assert.ok(id);
    const got = (await sdk.lms.getUserAssignment({ ...acct, id: ADA, subResourceId: id })).assignmentResult.data;
    assert.equal(got.id, id);
    assert.equal(got.userId, ADA);
    assert.equal(got.status.value, "in_progress");
    assert.equal(got.progress, 40);
    assert.equal(got.dueDate.toISOString(), DUE.toISOString());
    assert.equal(got.learningObjectExternalReference, state.courseRef);
    assert.equal(got.learningObjectId, state.courseId, "the reference resolves to the course's id");
    assert.equal(got.learningObjectType.value, "course");
    assert.equal(got.completedAt ?? null, null);
    const global = (await sdk.lms.getAssignment({ ...acct, id })).assignmentResult.data;
    assert.equal(global.id, id);
    assert.equal(global.progress, 40);
    note("201 CreateResult; status, progress, due date and the resolved course read back");
  });

check("listUserAssignments and listAssignments page, and filter by status, user and updated_after",
  ["listUserAssignments", "listAssignments", "createUserAssignment"], async (note) => {
    const statuses = ["pending", "completed", "in_progress", "completed", "pending", "completed", "pending"];
    for (const [i, status] of statuses.entries()) {
      await sdk.lms.createUserAssignment({
        ...acct, id: BOB,
        lmsCreateAssignmentRequestDto: { learningObjectExternalReference: `${RUN}-course-${i}`, status: { value: status } },
      });
    }
    const pages = await allPages(await sdk.lms.listUserAssignments({ ...acct, id: BOB, pageSize: "2" }),
      "assignmentsPaginated");
    assert.equal(flat(pages).length, statuses.length);
    assert.ok(pages.length > 3);
    assert.ok(flat(pages).every((a) => a.userId === BOB));

    const done = flat(await allPages(await sdk.lms.listUserAssignments({ ...acct, id: BOB, filter: { status: "completed" } }),
      "assignmentsPaginated"));
    assert.equal(done.length, 3);
    assert.ok(done.every((a) => a.status.value === "completed"));
    assert.ok(done.every((a) => a.completedAt instanceof Date), "a completed assignment has completed_at");

    const bobs = await allPages(await sdk.lms.listAssignments({ ...acct, userId: BOB, pageSize: "2" }), "assignmentsPaginated");
    assert.equal(flat(bobs).length, statuses.length);
    assert.ok(bobs.length > 3);
    const pending = flat(await allPages(await sdk.lms.listAssignments({ ...acct, userId: BOB, filter: { status: "pending" } }),
      "assignmentsPaginated"));
    assert.equal(pending.length, 3);

    await sleep(20);
    const cutoff = new Date();
    await sleep(20);
    const late = await sdk.lms.createUserAssignment({
      ...acct, id: CY, lmsCreateAssignmentRequestDto: { learningObjectExternalReference: `${RUN}-course-6` },
    });
    const recent = flat(await allPages(await sdk.lms.listAssignments({ ...acct, filter: { updatedAfter: cutoff } }),
      "assignmentsPaginated"));
    assert.deepEqual(ids(recent), [late.createResult.data.id]);
    note(`${statuses.length} assignments over more than 3 pages of 2; status, user_id and updated_after filters applied`);
  });

// ---------------------------------------------------------------- fields and raw

check("fields returns only the named fields", ["getUser", "listCompletions", "getContent"], async (note) => {
  const user = (await sdk.lms.getUser({ ...acct, id: ADA, fields: "id,email" })).userResult.data;
  assert.deepEqual(Object.keys(user).sort(), ["email", "id"]);
  assert.equal(user.email, `${ADA}@example.test`);
  const completions = (await sdk.lms.listCompletions({ ...acct, fields: "id,user_id", pageSize: "5" }))
    .completionsPaginated.data;
  assert.ok(completions.length > 0);
  for (const c of completions) assert.deepEqual(Object.keys(c).sort(), ["id", "userId"]);
  const content = (await sdk.lms.getContent({ ...acct, id: state.contentId, fields: "title" })).contentResult.data;
  assert.deepEqual(content, { title: "SQL basics" });
  note("getUser, listCompletions and getContent returned exactly the requested fields");
});

check("raw=true adds the provider calls; without it there are none", ["getCompletion", "listUsers"], async (note) => {
  const withRaw = (await sdk.lms.getCompletion({ ...acct, id: state.completionId, raw: true })).completionResult;
  assert.ok(Array.isArray(withRaw.raw) && withRaw.raw.length > 0, "raw should list the provider calls");
  for (const r of withRaw.raw) {
    assert.equal(typeof r.method, "string");
    assert.equal(typeof r.url, "string");
  }
  assert.equal(withRaw.data.id, state.completionId);
  const without = (await sdk.lms.getCompletion({ ...acct, id: state.completionId })).completionResult;
  assert.equal(without.raw ?? null, null);
  const list = (await sdk.lms.listUsers({ ...acct, raw: true, pageSize: "3" })).usersPaginated;
  assert.ok(list.raw.length > 0 && list.raw[0].method === "GET");
  note("getCompletion and listUsers returned a raw array of {method, url, ...} only when asked");
});

// ---------------------------------------------------------------- errors

check("400 BadRequestResponse for invalid input", ["createUserCompletion", "upsertContent", "listContent"],
  async (note) => {
    // SDK 4.28.0 still lets learningObjectExternalReference be left out; lmsgate requires it, as StackOne now does.
    const e1 = await expectError(sdk.lms.createUserCompletion({
      ...acct, id: ADA, lmsCreateCompletionRequestDto: { learningObjectId: "lo-1" },
    }), errors.BadRequestResponse, 400);
    assert.match(e1.message, /learning_object_external_reference/);
    const e2 = await expectError(sdk.lms.upsertContent({ ...acct, lmsUpsertContentRequestDto: { title: "no reference" } }),
      errors.BadRequestResponse, 400);
    assert.match(e2.message, /external_reference/);
    await expectError(sdk.lms.listContent({ ...acct, pageSize: "0" }), errors.BadRequestResponse, 400);
    const e3 = await expectError(sdk.lms.listContent({ ...acct, next: "not-a-cursor" }), errors.BadRequestResponse, 400);
    assert.match(e3.message, /next/);
    note("missing learning_object_external_reference, missing external_reference, page_size 0 and a forged cursor");
  });

check("401 UnauthorizedResponse for a wrong or missing API key", ["getUser", "listCompletions"], async (note) => {
  const wrong = new StackOne({ serverURL: BASE, security: { username: `${KEY}-wrong`, password: "" } });
  await expectError(wrong.lms.getUser({ ...acct, id: ADA }), errors.UnauthorizedResponse, 401);
  const none = new StackOne({ serverURL: BASE });
  await expectError(none.lms.listCompletions({ ...acct }), errors.UnauthorizedResponse, 401);
  note("a wrong key and no Authorization header at all");
});

check("404 NotFoundResponse for unknown records and accounts",
  ["getUser", "getContent", "getCourse", "getCategory", "getSkill", "getCompletion", "getAssignment",
    "getUserAssignment", "getUserCompletion", "listUsers"], async (note) => {
    const missing = `${RUN}-missing`;
    await expectError(sdk.lms.getUser({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getContent({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getCourse({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getCategory({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getSkill({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getCompletion({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getAssignment({ ...acct, id: missing }), errors.NotFoundResponse, 404);
    await expectError(sdk.lms.getUserAssignment({ ...acct, id: ADA, subResourceId: missing }), errors.NotFoundResponse, 404);
    // A completion that exists, asked for under another learner, is not found either.
    await expectError(sdk.lms.getUserCompletion({ ...acct, id: BOB, subResourceId: state.completionId }),
      errors.NotFoundResponse, 404);
    await expectError(sdk.lms.listUsers({ xAccountId: missing }), errors.NotFoundResponse, 404);
    note("unknown ids on every get, another learner's completion, and an unknown x-account-id");
  });

check("409 ConflictResponse when updateContent takes another content's external_reference", ["updateContent", "upsertContent"],
  async (note) => {
    await sdk.lms.upsertContent({ ...acct, lmsUpsertContentRequestDto: { externalReference: OTHER_REF, title: "Joins" } });
    const e = await expectError(sdk.lms.updateContent({
      ...acct, id: state.contentId, lmsCreateContentRequestDto: { externalReference: OTHER_REF },
    }), errors.ConflictResponse, 409);
    assert.match(e.message, new RegExp(OTHER_REF));
    const still = (await sdk.lms.getContent({ ...acct, id: state.contentId })).contentResult.data;
    assert.equal(still.externalReference, CONTENT_REF, "a refused update changes nothing");
    note("the content keeps its own external_reference after the refusal");
  });

check("412 PreconditionFailedResponse on a disabled linked account", ["listUsers", "createUserCompletion"], async (note) => {
  const disabled = process.env.LMSGATE_DISABLED_ACCOUNT_ID;
  assert.ok(disabled, "LMSGATE_DISABLED_ACCOUNT_ID is not set");
  await expectError(sdk.lms.listUsers({ xAccountId: disabled }), errors.PreconditionFailedResponse, 412);
  await expectError(sdk.lms.createUserCompletion({
    xAccountId: disabled, id: ADA, lmsCreateCompletionRequestDto: { learningObjectExternalReference: CONTENT_REF },
  }), errors.PreconditionFailedResponse, 412);
  note("reads and writes on an account whose status is disabled");
});

check("501 NotImplementedResponse for operations the account's connector does not offer",
  ["upsertContent", "batchUpsertContent", "listCourses", "getUser", "createUserAssignment", "createUserCompletion",
    "listCompletions"], async (note) => {
    const xapi = process.env.LMSGATE_XAPI_ACCOUNT_ID;
    const uninstalled = process.env.LMSGATE_UNINSTALLED_ACCOUNT_ID;
    assert.ok(xapi, "LMSGATE_XAPI_ACCOUNT_ID is not set");
    assert.ok(uninstalled, "LMSGATE_UNINSTALLED_ACCOUNT_ID is not set");
    // The xAPI connector records completions in an LRS; xAPI has no writable catalogue,
    // courses, learners or assignments, so those operations are not offered.
    const onXapi = { xAccountId: xapi };
    const e = await expectError(sdk.lms.upsertContent({ ...onXapi, lmsUpsertContentRequestDto: { externalReference: CONTENT_REF } }),
      errors.NotImplementedResponse, 501);
    assert.match(e.message, /xapi/);
    await expectError(sdk.lms.batchUpsertContent({ ...onXapi,
      lmsBatchUpsertContentRequestDto: { items: [{ externalReference: CONTENT_REF }] } }), errors.NotImplementedResponse, 501);
    await expectError(sdk.lms.listCourses({ ...onXapi }), errors.NotImplementedResponse, 501);
    await expectError(sdk.lms.getUser({ ...onXapi, id: ADA }), errors.NotImplementedResponse, 501);
    await expectError(sdk.lms.createUserAssignment({ ...onXapi, id: ADA,
      lmsCreateAssignmentRequestDto: { learningObjectExternalReference: CONTENT_REF } }), errors.NotImplementedResponse, 501);
    // An account whose provider has no connector in this lmsgate offers nothing at all.
    const gone = await expectError(sdk.lms.createUserCompletion({
      xAccountId: uninstalled, id: ADA, lmsCreateCompletionRequestDto: { learningObjectExternalReference: CONTENT_REF },
    }), errors.NotImplementedResponse, 501);
    assert.match(gone.message, /connector/);
    await expectError(sdk.lms.listCompletions({ xAccountId: uninstalled }), errors.NotImplementedResponse, 501);
    note("an xapi account (content, course, user and assignment operations) and an account whose provider has no installed connector");
  });

check("429 TooManyRequestsResponse over the rate limit, and the default retry policy recovers", ["listUsers"],
  async (note) => {
    const url = process.env.LMSGATE_RATE_LIMITED_URL;
    assert.ok(url, "LMSGATE_RATE_LIMITED_URL is not set");
    const limited = new StackOne({ serverURL: url, security: { username: KEY, password: "" } });
    // The SDK retries 429 for up to an hour by default; turn that off to see the error itself.
    const noRetry = { retries: { strategy: "none" } };
    let error;
    let allowed = 0;
    for (let i = 0; i < 500 && !error; i++) {
      try {
        await limited.lms.listUsers({ ...acct }, noRetry);
        allowed++;
      } catch (e) {
        error = e;
      }
    }
    assert.ok(error, "no 429 after 500 requests");
    await expectError(Promise.reject(error), errors.TooManyRequestsResponse, 429);
    const retryAfter = Number(error.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After: ${error.headers.get("retry-after")}`);
    assert.ok(allowed >= 1);

    const started = Date.now();
    const ok = await limited.lms.listUsers({ ...acct });
    const waited = Date.now() - started;
    assert.equal(ok.statusCode, 200);
    assert.ok(Array.isArray(ok.usersPaginated.data));
    assert.ok(waited >= 500, `the SDK should have waited for Retry-After, took ${waited} ms`);
    note(`refused once the key's allowance was spent, with Retry-After: ${retryAfter}; the SDK's default policy then waited and succeeded`);
  });

// ---------------------------------------------------------------- run

const results = { sdk: "@stackone/stackone-client-ts", sdkVersion: SDK_VERSION, node: process.version,
  checks: [], methods: [], errorsNotExercised: [] };
for (const c of checks) {
  const notes = [];
  const started = Date.now();
  let error = null;
  try {
    await c.fn((text) => notes.push(text));
  } catch (e) {
    error = `${e?.constructor?.name ?? "Error"}: ${e?.message ?? String(e)}`;
  }
  const row = { type: "check", name: c.name, methods: c.methods, ok: error === null, notes, error, ms: Date.now() - started };
  results.checks.push(row);
  console.log(JSON.stringify(row));
}
for (const [name, http] of Object.entries(METHODS)) {
  const used = results.checks.filter((c) => c.methods.includes(name));
  const failed = used.filter((c) => !c.ok);
  const row = {
    type: "method", name, http, ok: used.length > 0 && failed.length === 0,
    checks: used.map((c) => c.name), failed: failed.map((c) => c.name),
  };
  results.methods.push(row);
  console.log(JSON.stringify(row));
}
for (const [status, [cls, reason]] of Object.entries(NOT_EXERCISED)) {
  results.errorsNotExercised.push({ status: Number(status), class: cls, reason });
}
const passed = results.methods.filter((m) => m.ok).length;
const checksPassed = results.checks.filter((c) => c.ok).length;
results.summary = { methods: results.methods.length, methodsPassed: passed, checks: results.checks.length, checksPassed };
console.log(JSON.stringify({ type: "summary", ...results.summary }));
writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
process.exit(passed === results.methods.length && checksPassed === results.checks.length ? 0 : 1);
