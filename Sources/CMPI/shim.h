// OpenMPI defines its handles and constants as cast macros
// (`#define MPI_COMM_WORLD OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world)`),
// which Swift cannot import. These header-only functions give each one a name Swift can call.
#ifndef DCNET_CMPI_SHIM_H
#define DCNET_CMPI_SHIM_H
#include <mpi.h>
#include <stdlib.h>

static inline MPI_Comm dcnet_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm dcnet_mpi_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Comm dcnet_mpi_comm_null(void) { return MPI_COMM_NULL; }

static inline MPI_Datatype dcnet_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype dcnet_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype dcnet_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype dcnet_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype dcnet_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype dcnet_mpi_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Datatype dcnet_mpi_byte(void) { return MPI_BYTE; }

static inline MPI_Op dcnet_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op dcnet_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op dcnet_mpi_min(void) { return MPI_MIN; }

static inline void *dcnet_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler dcnet_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request dcnet_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *dcnet_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Info dcnet_mpi_info_null(void) { return MPI_INFO_NULL; }

static inline int dcnet_mpi_success(void) { return MPI_SUCCESS; }
static inline int dcnet_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int dcnet_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int dcnet_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int dcnet_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int dcnet_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int dcnet_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int dcnet_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }

#endif
