"""The unified LMS model: the one source of truth for JSON names, types and rules."""

from lmsgate.schema.assignments import (
    Assignment,
    AssignmentResult,
    AssignmentsPaginated,
    LmsCreateAssignmentRequestDto,
)
from lmsgate.schema.common import (
    ERROR_MODELS,
    BadRequestResponse,
    BatchResultApiModel,
    CreateResult,
    DeleteResult,
    ProviderError,
    RawResponse,
    UpdateResult,
    UpsertResult,
)
from lmsgate.schema.completions import Completion, CompletionResult, CompletionsPaginated, LmsCreateCompletionRequestDto
from lmsgate.schema.content import (
    Content,
    ContentPaginated,
    ContentResult,
    Course,
    CoursePaginated,
    CourseResult,
    LmsBatchUpsertContentRequestDto,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    LmsUpsertCourseRequestDto,
)
from lmsgate.schema.taxonomy import CategoriesPaginated, Category, CategoryResult, SkillResult, Skills, SkillsPaginated
from lmsgate.schema.users import LmsUpsertUserRequestDto, LmsUser, UserResult, UsersPaginated

__all__ = [
    "ERROR_MODELS",
    "Assignment",
    "AssignmentResult",
    "AssignmentsPaginated",
    "BadRequestResponse",
    "BatchResultApiModel",
    "CategoriesPaginated",
    "Category",
    "CategoryResult",
    "Completion",
    "CompletionResult",
    "CompletionsPaginated",
    "Content",
    "ContentPaginated",
    "ContentResult",
    "Course",
    "CoursePaginated",
    "CourseResult",
    "CreateResult",
    "DeleteResult",
    "LmsBatchUpsertContentRequestDto",
    "LmsCreateAssignmentRequestDto",
    "LmsCreateCompletionRequestDto",
    "LmsCreateContentRequestDto",
    "LmsUpsertContentRequestDto",
    "LmsUpsertCourseRequestDto",
    "LmsUpsertUserRequestDto",
    "LmsUser",
    "ProviderError",
    "RawResponse",
    "SkillResult",
    "Skills",
    "SkillsPaginated",
    "UpdateResult",
    "UpsertResult",
    "UserResult",
    "UsersPaginated",
]
